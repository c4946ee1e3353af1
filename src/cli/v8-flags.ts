/**
 * V8 flags the CLI sets for itself before it loads a command's code.
 *
 * A proxy runs the code of a new connection (accept, channel open, connect, bridge, teardown) a
 * few times a minute, not thousands of times a second like the code of a message: it stays in
 * V8's bytecode interpreter, where the first connections through a fresh proxy cost it two to
 * three times the CPU they cost once warm (measured: 700-1000 µs per connection per proxy after
 * 25 connections, 230-400 µs after 3000), and that CPU is most of a new connection's time to its
 * first byte. `--always-sparkplug` compiles each function to baseline machine code when first
 * compiled, instead of after it has run a while; hot code still goes on to the optimizing compiler.
 *
 * Set with v8.setFlagsFromString, which applies to functions compiled afterwards: main.ts calls
 * this before it imports the command, so everything a command runs is compiled under it.
 */
import v8 from 'node:v8';

/** Environment variable that replaces the default flags (space-separated); empty sets none. */
export const V8_FLAGS_ENV = 'DEVSTREAMS_V8_FLAGS';
/** The flags set when `DEVSTREAMS_V8_FLAGS` is not set. */
export const DEFAULT_V8_FLAGS = '--always-sparkplug';

/** Sets `DEVSTREAMS_V8_FLAGS` (or the default) in this process's V8. */
export function applyV8Flags(env: NodeJS.ProcessEnv = process.env): void {
  const flags = env[V8_FLAGS_ENV] ?? DEFAULT_V8_FLAGS;
  for (const flag of flags.split(' ')) if (flag !== '') v8.setFlagsFromString(flag);
}
