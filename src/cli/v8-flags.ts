/**
 * V8 flags the CLI sets for itself before it loads a command's code.
 *
 * A proxy runs the code of a new connection (accept, channel open, connect, bridge, teardown) once
 * per connection, not once per message: for its first hundreds of connections that code runs in
 * V8's bytecode interpreter, and they cost two to three times the CPU they cost once warm
 * (measured: 700-1000 µs per connection per proxy after 25 connections, 230-400 µs after 3000).
 * That CPU is most of a new connection's time to its first byte. `--always-sparkplug` compiles
 * each function to baseline machine code when first compiled, instead of after it has run a
 * while; hot code still goes on to the optimizing compiler.
 *
 * Set with v8.setFlagsFromString, which applies to functions compiled afterwards: main.ts calls
 * this before it imports the command, so everything a command runs is compiled under it.
 */
import v8 from 'node:v8';

/**
 * The commands that set them: the long-running ones, whose per-connection code runs again and
 * again. A one-shot command (`connect` as an ssh ProxyCommand, `registry`, `key`) never reuses
 * its code, and compiling all of it to baseline code costs 30-40 ms more at start.
 */
export const V8_FLAGS_COMMANDS: readonly string[] = ['hub', 'device-proxy', 'service-proxy'];
/** Environment variable that replaces the default flags (space-separated); empty sets none. */
export const V8_FLAGS_ENV = 'DEVSTREAMS_V8_FLAGS';
/** The flags set when `DEVSTREAMS_V8_FLAGS` is not set. */
export const DEFAULT_V8_FLAGS = '--always-sparkplug';

/** Sets `DEVSTREAMS_V8_FLAGS` (or the default) in this process's V8 if `command` is one of V8_FLAGS_COMMANDS. */
export function applyV8Flags(command: string | undefined, env: NodeJS.ProcessEnv = process.env): void {
  if (command === undefined || !V8_FLAGS_COMMANDS.includes(command)) return;
  const flags = env[V8_FLAGS_ENV] ?? DEFAULT_V8_FLAGS;
  for (const flag of flags.split(' ')) if (flag !== '') v8.setFlagsFromString(flag);
}
