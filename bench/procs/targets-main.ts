// Child-process entry: starts the named bench targets (argv[2], comma-separated; default all) and prints {"ports":{sink,echo,http}} on stdout.
import { NODE_TARGET_NAMES, startTargets, type NodeTargetName } from '../targets.js';

async function main(): Promise<void> {
  const names = (process.argv[2] ?? NODE_TARGET_NAMES.join(',')).split(',') as NodeTargetName[];
  const t = await startTargets(names.filter((n) => NODE_TARGET_NAMES.includes(n)));
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
