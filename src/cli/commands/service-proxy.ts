/** `devstreams service-proxy`: the service-side local proxy. */
import { Command } from 'commander';
import type { CryptoMode } from '../../crypto/index.js';
import {
  ControlServer,
  createServiceApp,
  DEFAULT_DEVICE_WAIT_MS,
  ServiceProxyMetrics,
  defaultControlPath,
  parseForward,
  parseListen,
  removeStaleSocket,
  masterListens,
  type SessionSource,
} from '../../proxy/index.js';
import { parsePolicyConnectionString } from '../../auth/index.js';
import type { Logger } from 'pino';
import { serveMetrics, type MetricsListener } from '../../hub/metrics-listener.js';
import { DevstreamsError } from '../../errors.js';
import { createLogger, withLogOptions, type LogFormat } from '../log.js';
import { action, fail } from '../fail.js';
import type { ServiceClient } from '../../sdk/index.js';
import { withConfigFile } from '../config-file.js';
import { controlIdentity, serviceSecurity } from '../service-security.js';
import {
  collect,
  connectionStringFrom,
  formatSeconds,
  onShutdown,
  parseCryptoMode,
  parsePositiveInt,
  QUEUE_TARGET_FLAG,
  PACE_PERCENT_FLAG,
  PACE_PERCENT_HELP,
  parsePercent,
  QUEUE_TARGET_HELP,
  resumeFromFlags,
  parsePositiveMs,
  hubTrust,
  connectionStringOptions,
  type ConnectionStringFlags,
  connectionSummary,
} from '../common.js';

interface ServiceProxyCliOpts extends ConnectionStringFlags {
  control?: boolean;
  controlPath?: string;
  deviceId: string;
  forward?: string[];
  socks?: string;
  eager?: boolean;
  key?: string;
  knownDevices?: string;
  deviceKey?: string;
  trustHub?: boolean;
  plaintext?: boolean;
  resume: boolean;
  queueTargetMs?: number;
  pacePercent?: number;
  crypto?: CryptoMode;
  waitTimeout?: number;
  deviceWait?: number;
  metricsListen?: { host: string; port: number };
  ca?: string;
  logLevel: string;
  logFormat?: LogFormat;
}

/**
 * Refusals no retry can fix: a wrong or revoked service key, a token for another hub, a device
 * id the hub does not know. At start they end the command (exit 2) instead of a ready proxy
 * that resets every connection.
 */
const PERMANENT_CODES: readonly string[] = [
  'ERR_AUTH_INVALID',
  'ERR_AUTH_SCOPE',
  'ERR_AUTH_MISSING',
  'ERR_DEVICE_NOT_FOUND',
  'ERR_CONNECTION_STRING',
];
/** How long the start-up check of credentials and device may take before the proxy starts anyway, ms. */
const PREFLIGHT_TIMEOUT_MS = 5_000;

function isPermanent(err: unknown): err is DevstreamsError {
  return err instanceof DevstreamsError && PERMANENT_CODES.includes(err.code);
}

/**
 * Asks the hub about the device before listening: wrong credentials or an unknown device end
 * the command here; a hub that cannot be reached or an offline device is only news (the proxy
 * retries per connection).
 */
async function preflight(client: ServiceClient, deviceId: string, deviceWaitMs: number, log: Logger): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new DevstreamsError('ERR_HUB_UNAVAILABLE', `hub did not answer within ${formatSeconds(PREFLIGHT_TIMEOUT_MS)}`)),
      PREFLIGHT_TIMEOUT_MS,
    );
  });
  try {
    const info = await Promise.race([client.getDevice(deviceId), timeout]);
    if (info.connected) log.info({ deviceId, node: info.node }, `device ${deviceId} is online`);
    else
      log.warn(
        { deviceId, lastSeen: info.lastSeen },
        `device ${deviceId} is registered but offline (last seen ${info.lastSeen ?? 'never, by this hub'}); connections will wait up to ${formatSeconds(deviceWaitMs)} for it`,
      );
  } catch (err) {
    if (isPermanent(err)) throw err;
    log.warn({ code: (err as DevstreamsError).code }, `${(err as Error).message}; starting anyway, each connection tries again`);
  } finally {
    clearTimeout(timer);
  }
}

/** The control path `devstreams connect` with the same identity and key options uses for this device. */
function controlPathFor(cs: string, deviceId: string, o: ServiceProxyCliOpts): string {
  const policy = parsePolicyConnectionString(cs);
  return defaultControlPath(policy.hostName, deviceId, controlIdentity(o, policy.policy));
}

/** Serves `devstreams connect` clients from this proxy's device stream; returns the stop function. */
async function serveControl(path: string, source: SessionSource, log: Logger): Promise<() => Promise<void>> {
  const server = new ControlServer({
    path,
    source,
    onChannel: (e) => log.debug({ target: e.target, outcome: e.outcome, err: e.error?.message }, 'control channel'),
  });
  try {
    await server.listen();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    // A master killed without cleanup leaves its socket file; a live one answers.
    if (await masterListens(path))
      throw new DevstreamsError(
        'ERR_CONFIG',
        `a control master already listens on ${path}; stop it first (devstreams connect DEVICE --exit)`,
      );
    removeStaleSocket(path);
    await server.listen();
  }
  log.info({ controlPath: path }, 'control socket ready: devstreams connect uses this device stream');
  return async () => {
    await server.close(); // removes the socket file, if still ours
  };
}

/** `devstreams service-proxy`: runs a service app from flags, with an optional control master and metrics listener. */
export function serviceProxyCommand(): Command {
  const cmd = connectionStringOptions(
    new Command('service-proxy').description(
      'service side: listen on local ports and carry each connection to the device through one device stream',
    ),
    'service',
  )
    .requiredOption('--device-id <id>', 'the device to reach')
    .option(
      '--forward <[bind:]lport:host:port>',
      'listen on lport and forward to host:port as seen from the device; repeatable (bind defaults to 127.0.0.1; lport 0 picks a free port)',
      collect,
    )
    .option('--socks <[bind:]port>', 'also offer a SOCKS5 (CONNECT) proxy to any target the device allows')
    .option('--eager', 'open the device stream at start instead of on the first connection')
    .option('--key <file>', 'service key file (created on first use; default $DEVSTREAMS_HOME/service.key)')
    .option('--known-devices <file>', 'pinned device keys, trust on first use (default $DEVSTREAMS_HOME/known_devices)')
    .option('--device-key <base64>', 'expect exactly this device key instead of the known-devices file')
    .option('--trust-hub', 'take the device key from the hub (the key the device announced when it connected) instead of pinning it here')
    .option('--plaintext', 'no end-to-end encryption: the hub can read the traffic (for measurement; the device must --allow-plaintext)')
    .option('--no-resume', 'do not keep the device session across dropped streams (open connections then end with the stream)')
    .option('--crypto <mode>', 'where records are sealed: inline, workers or auto', parseCryptoMode)
    .option(QUEUE_TARGET_FLAG, QUEUE_TARGET_HELP, parsePositiveInt)
    .option(PACE_PERCENT_FLAG, PACE_PERCENT_HELP, parsePercent)
    .option('--wait-timeout <seconds>', 'how long a connection waits for the device stream to open (default 30)', parsePositiveMs)
    .option(
      '--metrics-listen <host:port>',
      'serve Prometheus metrics (channel and stream open times, connections by outcome, process) at GET /metrics here',
      (v: string) => parseListen(v, '--metrics-listen'),
    )
    .option(
      '--device-wait <seconds>',
      `how long opening the stream waits for an offline device to connect (default ${DEFAULT_DEVICE_WAIT_MS / 1000})`,
      parsePositiveMs,
    )
    .option('--ca <file>', 'extra CA certificate (PEM) for a hub with a self-signed certificate')
    .option('--control', "also be the control master for 'devstreams connect' to this device: its connections use this device stream")
    .option('--control-path <file>', 'the control socket for --control (default: the one devstreams connect uses)');
  withLogOptions(cmd);
  withConfigFile(cmd);
  cmd.addHelpText(
    'after',
    `
Examples:
  $ devstreams service-proxy --connection-string-file service.cs --device-id sensor-17 --forward 2222:127.0.0.1:22
  $ ssh -p 2222 user@127.0.0.1
  $ devstreams service-proxy --device-id sensor-17 --forward 8080:127.0.0.1:80 --socks 1080

One line per listener is printed on stdout ("forward 127.0.0.1:2222 -> 127.0.0.1:22").

At start the proxy asks the hub about the device: a wrong key or an unknown device id ends
it with exit code 2; an unreachable hub or an offline device is logged and retried per connection.

Signals: SIGINT/SIGTERM stop gracefully (again to force). SIGUSR2 starts afresh without
dropping anyone: open connections finish on the current device stream, the next connection
opens a new one (new hub rendezvous and handshake). Use it after re-pinning a device key, or
to move to another hub node; "device stream dropped" is logged once the old stream is closed.`,
  );
  cmd.action(
    action(async (o: ServiceProxyCliOpts) => {
      if (!o.resume && o.queueTargetMs !== undefined)
        throw new DevstreamsError('ERR_USAGE', '--queue-target-ms needs resumable sessions: drop --no-resume');
      if (!o.resume && o.pacePercent !== undefined)
        throw new DevstreamsError('ERR_USAGE', '--pace-percent needs resumable sessions: drop --no-resume');
      const log = createLogger(o);
      const cs = connectionStringFrom(o, (line) => log.warn(line));
      const forwards = (o.forward ?? []).map(parseForward);
      const socks = o.socks !== undefined ? parseListen(o.socks, '--socks') : undefined;
      if (forwards.length === 0 && !socks) throw new DevstreamsError('ERR_CONFIG', 'nothing to do: give at least one --forward or --socks');
      let security = {};
      if (!o.plaintext) security = await serviceSecurity(o, o.deviceId, log);
      else log.warn('--plaintext: no end-to-end encryption; the hub can read this traffic');
      const metrics = o.metricsListen ? new ServiceProxyMetrics() : undefined;
      let streamOpening: number | undefined;
      const logState = (state: string, err?: Error): void => {
        if (state === 'closed' && err) log.warn({ err: err.message }, 'device stream closed');
        else log.info({ state }, 'device stream'); // the bench matches this message exactly
      };
      const { proxy, source, client } = createServiceApp({
        connectionString: cs,
        deviceId: o.deviceId,
        forwards,
        socks,
        encrypt: !o.plaintext,
        ...security,
        crypto: o.crypto,
        resume: o.resume ? resumeFromFlags(o.queueTargetMs, o.pacePercent) : false,
        waitTimeoutMs: o.waitTimeout,
        ...(await hubTrust(cs, o.ca)),
        deviceWaitMs: o.deviceWait,
        onDeviceWait: (deviceId, waitMs) =>
          log.warn({ deviceId }, `device ${deviceId} is offline; waiting up to ${formatSeconds(waitMs)} for it to connect`),
        onChannelOpen: metrics && ((ms: number) => metrics.channelOpened(ms)),
        onState: (state, err) => {
          if (state === 'opening') streamOpening = performance.now();
          else if (state === 'open' && streamOpening !== undefined) metrics?.streamOpened(performance.now() - streamOpening);
          if (state !== 'opening') streamOpening = undefined;
          logState(state, err);
        },
        onResume: (e) => {
          if (e.kind === 'resumed') log.info({ sessionId: e.sessionId, ...e.info }, 'device session resumed on a new stream');
          else if (e.kind === 'suspended') log.warn({ sessionId: e.sessionId, err: e.error?.message }, 'device stream dropped; resuming');
          else if (e.kind === 'attemptFailed')
            log.debug({ sessionId: e.sessionId, attempt: e.attempt, err: e.error.message }, 'resume attempt failed');
          else log.warn({ sessionId: e.sessionId, err: e.error.message }, 'device session lost');
        },
        onConnection: (e) => {
          const code = (e.error as { code?: string } | undefined)?.code;
          metrics?.connection(e.outcome, code);
          // A connection's start is a debug line: below debug it costs no fields and no message.
          if (e.outcome === 'opened' && !e.error && !log.isLevelEnabled('debug')) return;
          const fields = { listener: e.listener, target: e.target, outcome: e.outcome, code };
          const where = `${e.listener === 'socks' ? 'socks' : `:${e.listener}`} -> ${e.target}`;
          // A client that reset before its channel was open (a TCP health check does) was not refused.
          const verb = e.outcome === 'failed' && code !== 'ERR_CHANNEL_RESET' ? 'refused' : 'ended';
          if (e.error)
            log[isPermanent(e.error) ? 'error' : 'warn'](
              { ...fields, ...e.stats },
              `connection ${where} ${verb}${e.stats ? ` ${connectionSummary(e.stats)}` : ''}: ${e.error.message}${code ? ` (${code})` : ''}`,
            );
          // One line per connection at info, when it ends (an access log); its start is debug, so
          // a new connection's first bytes never wait behind a log write.
          else if (e.outcome === 'closed' && e.stats)
            log.info({ ...fields, ...e.stats }, `connection ${where} closed ${connectionSummary(e.stats)}`);
          else log.debug(fields, `connection ${where} ${e.outcome}`);
        },
      });
      await preflight(client, o.deviceId, o.deviceWait ?? DEFAULT_DEVICE_WAIT_MS, log);
      const listeners = await proxy.start();
      for (const l of listeners)
        process.stdout.write(l.kind === 'forward' ? `forward ${l.host}:${l.port} -> ${l.target}\n` : `socks ${l.host}:${l.port}\n`);
      log.info({ deviceId: o.deviceId, listeners, queueTargetMs: o.queueTargetMs, pacePercent: o.pacePercent }, 'service proxy ready');
      const control = o.control ? await serveControl(o.controlPath ?? controlPathFor(cs, o.deviceId, o), source, log) : undefined;
      let metricsListener: MetricsListener | undefined;
      if (metrics && o.metricsListen) {
        metricsListener = await serveMetrics(metrics.registry, o.metricsListen.host, o.metricsListen.port);
        process.stdout.write(`metrics ${o.metricsListen.host}:${metricsListener.port}\n`);
      }
      onShutdown(
        log,
        async () => {
          await control?.();
          await proxy.stop();
          await metricsListener?.close();
        },
        () => proxy.connectionCount,
      );
      process.on('SIGUSR2', () => {
        const had = source.peek() !== undefined;
        source.close().then(
          () => log.info({ signal: 'SIGUSR2', hadStream: had }, 'device stream dropped'),
          (err: Error) => log.warn({ signal: 'SIGUSR2', err: err.message }, 'device stream drop failed'),
        );
      });
      if (o.eager) {
        // Opening early is a convenience: a failure here is logged and retried by the next connection.
        await proxy.warmUp().catch(async (err: Error) => {
          if (!isPermanent(err)) {
            log.warn(
              { code: (err as DevstreamsError).code },
              `device stream did not open at start: ${err.message}; the next connection tries again`,
            );
            return;
          }
          await proxy.stop();
          fail(err);
        });
      }
    }),
  );
  return cmd;
}
