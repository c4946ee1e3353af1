// Child-process entry: runs a set of link emulators given as base64url JSON in argv[2] and prints
// {"ports":[...]} on stdout once all listen. Runs outside the bench's event loop so that
// relay work is a separate, measurable process (like a real hub).
import { LinkEmulator, type LinkEmulatorOptions } from '../link-emulator.js';

async function main(): Promise<void> {
  // base64url JSON: survives clinic's argument parsing, which treats [ ] as sub-arguments.
  const specs = JSON.parse(Buffer.from(process.argv[2] ?? '', 'base64url').toString() || '[]') as LinkEmulatorOptions[];
  const emulators = specs.map((s) => new LinkEmulator(s));
  const ports: number[] = [];
  for (const e of emulators) ports.push(await e.listen());
  process.stdout.write(`${JSON.stringify({ ports })}\n`);
  const stop = (): void => {
    void Promise.all(emulators.map((e) => e.close())).finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`links: ${String(err)}\n`);
  process.exit(1);
});
