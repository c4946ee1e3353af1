#!/usr/bin/env node
/**
 * The devstreams command line. Each subcommand lives in `commands/<name>.ts` and exports a
 * function returning a commander `Command`; add new ones to COMMANDS below.
 *
 * Only the command being run is loaded: a proxy process should not carry the hub, Redis client
 * and metrics code in its heap, since every major garbage collection walks the whole heap and a
 * proxy moving hundreds of MB/s runs many of them.
 */
import { readFileSync } from 'node:fs';
import { Command, type CommanderError } from 'commander';
import { EXIT_USAGE, fail } from './fail.js';
import { applyV8Flags } from './v8-flags.js';

interface CommandEntry {
  name: string;
  summary: string;
  load(): Promise<Command>;
}

/** Subcommands, in help order. */
const COMMANDS: CommandEntry[] = [
  {
    name: 'hub',
    summary: 'run a hub: device control sockets, stream rendezvous and relay, registry API',
    load: async () => (await import('./commands/hub.js')).hubCommand(),
  },
  {
    name: 'registry',
    summary: 'manage devices and print connection strings',
    load: async () => (await import('./commands/registry.js')).registryCommand(),
  },
  {
    name: 'device-proxy',
    summary: 'device side: connect tunnelled channels to allowed local targets',
    load: async () => (await import('./commands/device-proxy.js')).deviceProxyCommand(),
  },
  {
    name: 'key',
    summary: 'show public keys; authorize or revoke services on a device',
    load: async () => (await import('./commands/key.js')).keyCommand(),
  },
  {
    name: 'service-proxy',
    summary: 'service side: listen on local ports, carry connections to the device',
    load: async () => (await import('./commands/service-proxy.js')).serviceProxyCommand(),
  },
  {
    name: 'connect',
    summary: 'join stdin/stdout to a port on a device (ssh ProxyCommand); shares one device stream per device',
    load: async () => (await import('./commands/connect.js')).connectCommand(),
  },
  {
    name: 'demo',
    summary: 'hub, both proxies and demo device services in one process, on loopback',
    load: async () => (await import('./commands/demo.js')).demoCommand(),
  },
];

/** The version in package.json, three levels up from dist/src/cli in a clone and in an installed package alike. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/**
 * Makes commander's own errors (unknown option, missing value, bad argument) follow the CLI's
 * convention: `devstreams: ERR_USAGE: ...` on stderr and exit 2; help and --version exit 0.
 * Applied to every command, since added commands do not inherit these settings.
 */
function usageConvention(cmd: Command): void {
  cmd.configureOutput({ outputError: (text, write) => write(`devstreams: ERR_USAGE: ${text.replace(/^error: /, '')}`) });
  cmd.exitOverride((err: CommanderError) => {
    process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
  });
  for (const sub of cmd.commands) usageConvention(sub);
}

/** The program with `only` fully loaded (or every command, when undefined) and the rest as summaries. */
export async function buildProgram(only?: string): Promise<Command> {
  const program = new Command('devstreams')
    .description('reach TCP ports on devices behind firewalls through a hub both sides dial out to')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .showHelpAfterError('(run with --help for usage)');
  for (const entry of COMMANDS) {
    program.addCommand(only === undefined || entry.name === only ? await entry.load() : new Command(entry.name).description(entry.summary));
  }
  program.addHelpText(
    'after',
    `
Examples:
  $ devstreams demo
  $ devstreams hub --listen 127.0.0.1:8080 --data ./hubdata
  $ devstreams registry add sensor-17 --data ./hubdata
  $ devstreams device-proxy --connection-string-file sensor-17.cs --allow 127.0.0.1:22
  $ devstreams service-proxy --connection-string-file service.cs --device-id sensor-17 --forward 2222:127.0.0.1:22

Run 'devstreams <command> --help' for a command's options.
Exit codes: 0 done; 1 a run-time failure (hub unreachable, ...); 2 fix the command (flags, config, credentials).`,
  );
  usageConvention(program);
  return program;
}

const requested = process.argv[2];
const known = COMMANDS.some((c) => c.name === requested);
// Before the command's code is imported (see v8-flags.ts).
applyV8Flags(known ? requested : undefined);
buildProgram(known ? requested : undefined)
  .then((program) => program.parseAsync(process.argv))
  .catch(fail);
