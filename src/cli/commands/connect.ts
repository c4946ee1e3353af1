/**
 * `devstreams connect DEVICE HOST:PORT`: joins stdin/stdout to one channel to HOST:PORT as seen
 * from the device, for `ssh -o ProxyCommand='devstreams connect %h 127.0.0.1:22'` (and scp,
 * rsync -e, git). Like ssh's ControlMaster with ControlPersist, the first `connect` to a device
 * starts a background master that holds the device stream and serves channels on a Unix socket
 * only this user can open; every `connect` (the first included) is a client of it, so a second
 * ssh to the device costs no hub round trip and no handshake. The master runs in the background
 * because ssh ends its ProxyCommand (SIGHUP) when its session ends, while others still use the
 * stream; it stops after --persist seconds without channels, or at once when it holds no stream.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Duplex } from 'node:stream';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { Logger } from 'pino';
import { parsePolicyConnectionString } from '../../auth/index.js';
import {
  ControlServer,
  createServiceApp,
  defaultControlPath,
  masterListens,
  removeStaleSocket,
  requestChannel,
  requestExit,
  type SessionSource,
} from '../../proxy/index.js';
import { DevstreamsError } from '../../errors.js';
import { LOG_LEVELS, createLogger, parseLogLevel } from '../log.js';
import { action } from '../fail.js';
import {
  connectionStringFrom,
  connectionStringOptions,
  onShutdown,
  parsePositiveMs,
  hubTrust,
  type ConnectionStringFlags,
} from '../common.js';
import { controlIdentity, serviceSecurity, type ServiceSecurityFlags } from '../service-security.js';

/** How long a master keeps an unused device stream open, seconds (ssh's ControlPersist). */
export const DEFAULT_PERSIST_SECONDS = 600;
/** How long a client waits for a master it started to listen. */
export const MASTER_START_TIMEOUT_MS = 30_000;
/** Pause between a client's tries to reach the master it started. */
const MASTER_POLL_MS = 50;

interface ConnectCliOpts extends ConnectionStringFlags, ServiceSecurityFlags {
  controlPath?: string;
  control: boolean;
  persist: number;
  exit?: boolean;
  master?: boolean;
  ca?: string;
  waitTimeout?: number;
  logLevel: string;
}

function parseTarget(value: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^\s:]+):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535)
    throw new DevstreamsError('ERR_CONFIG', `bad target "${value}": expected HOST:PORT as seen from the device, e.g. 127.0.0.1:22`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function parseSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a number of seconds (0: stop when the last channel ends)');
  return n;
}

/** Joins stdin/stdout to `stream`; exits the process when the stream is gone (0 clean, 1 on error). */
function joinStdio(stream: Duplex, log: Logger): void {
  process.stdin.pipe(stream);
  stream.pipe(process.stdout);
  let failed = false;
  stream.on('error', (err: Error) => {
    failed = true;
    log.error({ err: err.message, code: (err as DevstreamsError).code }, 'channel failed');
  });
  stream.once('close', () => {
    log.flush();
    process.exitCode = failed ? 1 : 0;
    // stdin may stay open (a terminal): nothing more can go anywhere.
    process.stdout.once('finish', () => process.exit());
    process.stdout.end();
    setImmediate(() => process.exit());
  });
}

/** Builds the one-device session source the master (or --no-control) uses. */
async function sessionSource(
  o: ConnectCliOpts,
  cs: string,
  deviceId: string,
  log: Logger,
  onNotice?: (text: string) => void,
): Promise<SessionSource> {
  const security = await serviceSecurity(o, deviceId, log, onNotice);
  const { source } = createServiceApp({
    connectionString: cs,
    deviceId,
    forwards: [],
    ...security,
    waitTimeoutMs: o.waitTimeout,
    ...(await hubTrust(cs, o.ca)),
    onState: (state, err) =>
      state === 'closed' && err ? log.warn({ err: err.message }, 'device stream closed') : log.info({ state }, 'device stream'),
  });
  return source;
}

/** The background master: holds the device stream, serves channels on the control socket. */
async function runMaster(o: ConnectCliOpts, cs: string, deviceId: string, path: string, log: Logger): Promise<void> {
  process.on('SIGHUP', () => {}); // detached already; a stray hangup must not end others' channels
  // The master's log is a file nobody reads: notices (a newly pinned device key) go to the
  // clients waiting for a channel, which print them on stderr as ssh does.
  const source = await sessionSource(o, cs, deviceId, log, (text) => server.notify(text));
  // One persist timer: every channel request disarms it, the last channel's end re-arms it, and
  // it stops the master only if no channel is open when it fires (a timer left armed by an
  // earlier idle spell must not end a channel that opened since).
  let timer: NodeJS.Timeout | undefined;
  const arm = (ms: number): void => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      if (server.activeChannels === 0) void stop(`no channel for ${o.persist} s`);
    }, ms);
  };
  let stopping = false;
  const stop = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    clearTimeout(timer);
    log.info({ why }, 'control master stopping');
    await server.close(); // removes the socket file first, if still ours; ends the channels
    await source.close();
    log.flush();
    process.exit(0);
  };
  const server = new ControlServer({
    path,
    source,
    onRequest: () => clearTimeout(timer),
    onChannel: (e) => log.info({ target: e.target, outcome: e.outcome, err: e.error?.message }, 'channel'),
    onExit: () => void stop('exit requested'),
  });
  server.onIdle(() => {
    if (source.peek() === undefined) return void stop('no device stream to keep');
    arm(o.persist * 1000);
  });
  try {
    await server.listen();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    // Either a live master (another connect won the race: leave it) or a dead one's file.
    if (await masterListens(path)) return void log.info('another control master listens; leaving it');
    removeStaleSocket(path);
    await server.listen();
  }
  log.info({ deviceId, controlPath: path, persist: o.persist }, 'control master ready');
  arm(MASTER_START_TIMEOUT_MS + o.persist * 1000);
  onShutdown(log, async () => {
    await server.close();
    await source.close();
  });
}

/** Starts a master in the background; its log goes to `<path>.log` (mode 600). */
function startMaster(path: string): { exited: () => number | null; logPath: string } {
  const logPath = path.replace(/\.sock$/, '') + '.log';
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const fd = openSync(logPath, 'w', 0o600);
  const child = spawn(process.execPath, [process.argv[1]!, ...process.argv.slice(2), '--master'], {
    detached: true,
    stdio: ['ignore', 'ignore', fd],
  });
  closeSync(fd);
  let code: number | null = null;
  child.once('exit', (c) => (code = c ?? 1));
  child.unref();
  return { exited: () => code, logPath };
}

function isNoMaster(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ECONNREFUSED';
}

/** A notice from the master, for the user: on stderr, like ssh's "Permanently added". */
function printNotice(text: string): void {
  process.stderr.write(`${text}\n`);
}

/** A channel from the master at `path`, starting one when none listens. */
async function channelViaMaster(path: string, host: string, port: number, log: Logger): Promise<Duplex> {
  try {
    return await requestChannel(path, host, port, printNotice);
  } catch (err) {
    if (!isNoMaster(err)) throw err;
  }
  log.debug({ controlPath: path }, 'no control master; starting one');
  const master = startMaster(path);
  const deadline = Date.now() + MASTER_START_TIMEOUT_MS;
  for (;;) {
    try {
      return await requestChannel(path, host, port, printNotice);
    } catch (err) {
      if (!isNoMaster(err)) throw err;
    }
    const code = master.exited();
    if (code !== null && code !== 0) {
      let tail = '';
      try {
        tail = readFileSync(master.logPath, 'utf8').trim().split('\n').slice(-3).join('\n');
      } catch {
        // the log is a courtesy
      }
      throw new DevstreamsError('ERR_HUB_UNAVAILABLE', `the control master exited (${code}); its log ${master.logPath}:\n${tail}`);
    }
    if (Date.now() > deadline)
      throw new DevstreamsError(
        'ERR_HUB_UNAVAILABLE',
        `the control master did not listen on ${path} within ${MASTER_START_TIMEOUT_MS} ms; see ${master.logPath}`,
      );
    await new Promise((resolve) => setTimeout(resolve, MASTER_POLL_MS));
  }
}

/** `devstreams connect`: an ssh ProxyCommand that shares one device stream per device through a control master. */
export function connectCommand(): Command {
  const cmd = connectionStringOptions(
    new Command('connect')
      .description('join stdin/stdout to HOST:PORT on the device (an ssh ProxyCommand); connections to one device share one device stream')
      .argument('<device>', 'the device id (ssh passes it as %h)')
      .argument('[target]', 'HOST:PORT as seen from the device', '127.0.0.1:22'),
    'service',
  )
    .option(
      '--control-path <file>',
      'the control socket (default $DEVSTREAMS_HOME/control/<hash of hub, device, service identity and key options>.sock)',
    )
    .option('--no-control', 'open a device stream of its own instead of sharing one through the control socket')
    .option(
      '--persist <seconds>',
      'how long the background master keeps an unused device stream open',
      parseSeconds,
      DEFAULT_PERSIST_SECONDS,
    )
    .option('--exit', "stop the device's control master (like ssh -O exit), then exit")
    .option('--key <file>', 'service key file (created on first use; default $DEVSTREAMS_HOME/service.key)')
    .option('--known-devices <file>', 'pinned device keys, trust on first use (default $DEVSTREAMS_HOME/known_devices)')
    .option('--device-key <base64>', 'expect exactly this device key instead of the known-devices file')
    .option('--trust-hub', 'take the device key from the hub instead of pinning it here')
    .option('--wait-timeout <seconds>', 'how long to wait for the device stream to open (default 30)', parsePositiveMs)
    .option('--ca <file>', 'extra CA certificate (PEM) for a hub with a self-signed certificate')
    .option('--log-level <level>', `log level (stderr; stdout is the channel): ${LOG_LEVELS.join(', ')}`, parseLogLevel, 'warn');
  cmd.addOption(new Option('--master', 'run as the background control master').hideHelp());
  cmd.addHelpText(
    'after',
    `
Examples:
  $ ssh -o ProxyCommand='devstreams connect --connection-string-file ~/.devstreams/service.cs %h 127.0.0.1:22' user@sensor-17
  $ rsync -e "ssh -o ProxyCommand='devstreams connect %h'" -a ./logs/ user@sensor-17:/tmp/logs/
  $ devstreams connect sensor-17 --exit

In ~/.ssh/config:
  Host sensor-*
    ProxyCommand devstreams connect --connection-string-file ~/.devstreams/service.cs %h 127.0.0.1:22

The background master logs to the control socket's path with .log instead of .sock.`,
  );
  cmd.action(
    action(async (device: string, targetText: string, o: ConnectCliOpts) => {
      const log = createLogger(o.master ? 'info' : o.logLevel);
      const target = parseTarget(targetText);
      const cs = connectionStringFrom(o, (line) => log.warn(line));
      const policy = parsePolicyConnectionString(cs);
      // Clients that differ in identity or in how they check the device get masters of their own.
      const path = o.controlPath ?? defaultControlPath(policy.hostName, device, controlIdentity(o, policy.policy));
      if (o.exit) {
        const stopped = await requestExit(path);
        process.stderr.write(stopped ? `control master for ${device} stopped\n` : `no control master for ${device} (${path})\n`);
        return;
      }
      if (o.master) return runMaster(o, cs, device, path, log);
      if (!o.control) {
        const source = await sessionSource(o, cs, device, log);
        const session = await source.get();
        const channel = session.openChannel(target);
        channel.once('close', () => void source.close());
        return joinStdio(channel, log);
      }
      joinStdio(await channelViaMaster(path, target.host, target.port, log), log);
    }),
  );
  return cmd;
}
