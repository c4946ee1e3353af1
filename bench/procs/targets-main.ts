// Child-process entry: starts the bench targets and prints {"ports":{sink,echo,http}} on stdout.
import { startTargets } from '../targets.js';

async function main(): Promise<void> {
  const t = await startTargets();
  process.stdout.write(`${JSON.stringify({ ports: t.ports })}\n`);
  const stop = (): void => {
    void t.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`targets: ${String(err)}\n`);
  process.exit(1);
});
