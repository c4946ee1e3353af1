/** `devstreams service-proxy`: the service-side local proxy. */
import { Command } from 'commander';
import type { CryptoMode } from '../../crypto/index.js';
import { ControlServer, createServiceApp, defaultControlPath, parseForward, parseListen, removeStaleSocket, masterListens, type SessionSource } from '../../proxy/index.js';
import { parsePolicyConnectionString } from '../../auth/index.js';
import type { Logger } from 'pino';
import { DevstreamsError } from '../../errors.js';
import { createLogger } from '../log.js';
import { action } from '../fail.js';
import { withConfigFile } from '../config-file.js';
import { serviceSecurity } from '../service-security.js';
import { collect, connectionStringFrom, onShutdown, parseCryptoMode, parsePositiveMs, hubTrust, connectionStringOptions, type ConnectionStringFlags } from '../common.js';

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
  crypto?: CryptoMode;
  waitTimeout?: number;
  ca?: string;
  logLevel: string;
}

/** Serves `devstreams connect` clients from this proxy's device stream; returns the stop function. */
async function serveControl(path: string, source: SessionSource, log: Logger): Promise<() => Promise<void>> {
  const server = new ControlServer({ path, source, onChannel: (e) => log.debug({ target: e.target, outcome: e.outcome, err: e.error?.message }, 'control channel') });
  try {
    await server.listen();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    // A master killed without cleanup leaves its socket file; a live one answers.
    if (await masterListens(path)) throw new DevstreamsError('ERR_CONFIG', `a control master already listens on ${path}; stop it first (devstreams connect DEVICE --exit)`);
    removeStaleSocket(path);
    await server.listen();
  }
  log.info({ controlPath: path }, 'control socket ready: devstreams connect uses this device stream');
  return async () => {
    await server.close();
    removeStaleSocket(path);
  };
}

export function serviceProxyCommand(): Command {
  const cmd = connectionStringOptions(new Command('service-proxy')
    .description('service side: listen on local ports and carry each connection to the device through one device stream'), 'service')
    .requiredOption('--device-id <id>', 'the device to reach')
    .option('--forward <[bind:]lport:host:port>', 'listen on lport and forward to host:port as seen from the device; repeatable (bind defaults to 127.0.0.1; lport 0 picks a free port)', collect)
    .option('--socks <[bind:]port>', 'also offer a SOCKS5 (CONNECT) proxy to any target the device allows')
    .option('--eager', 'open the device stream at start instead of on the first connection')
    .option('--key <file>', 'service key file (created on first use; default $DEVSTREAMS_HOME/service.key)')
    .option('--known-devices <file>', 'pinned device keys, trust on first use (default $DEVSTREAMS_HOME/known_devices)')
    .option('--device-key <base64>', 'expect exactly this device key instead of the known-devices file')
    .option('--trust-hub', 'take the device key from the hub (the key the device announced when it connected) instead of pinning it here')
    .option('--plaintext', 'no end-to-end encryption: the hub can read the traffic (for measurement; the device must --allow-plaintext)')
    .option('--no-resume', 'do not keep the device session across dropped streams (open connections then end with the stream)')
    .option('--crypto <mode>', 'where records are sealed: inline, workers or auto', parseCryptoMode)
    .option('--wait-timeout <seconds>', 'how long a connection waits for the device stream to open (default 30)', parsePositiveMs)
    .option('--ca <file>', 'extra CA certificate (PEM) for a hub with a self-signed certificate')
    .option('--control', "also be the control master for 'devstreams connect' to this device: its connections use this device stream")
    .option('--control-path <file>', 'the control socket for --control (default: the one devstreams connect uses)')
    .option('--log-level <level>', 'pino log level', 'info');
  withConfigFile(cmd);
  cmd.addHelpText('after', `
Examples:
  $ devstreams service-proxy --connection-string-file service.cs --device-id sensor-17 --forward 2222:127.0.0.1:22
  $ ssh -p 2222 user@127.0.0.1
  $ devstreams service-proxy --device-id sensor-17 --forward 8080:127.0.0.1:80 --socks 1080

One line per listener is printed on stdout ("forward 127.0.0.1:2222 -> 127.0.0.1:22").

Signals: SIGINT/SIGTERM stop gracefully. SIGUSR2 drops the current device stream gracefully
(open connections finish on it; the next connection opens a new one, hub handshake included)
and logs "device stream dropped" once it is closed; the bench uses it to measure a cold start.`);
  cmd.action(action(async (o: ServiceProxyCliOpts) => {
    const log = createLogger(o.logLevel);
    const cs = connectionStringFrom(o, (line) => log.warn(line));
    const forwards = (o.forward ?? []).map(parseForward);
    const socks = o.socks !== undefined ? parseListen(o.socks, '--socks') : undefined;
    if (forwards.length === 0 && !socks) throw new DevstreamsError('ERR_CONFIG', 'nothing to do: give at least one --forward or --socks');
    let security = {};
    if (!o.plaintext) security = await serviceSecurity(o, o.deviceId, log);
    else log.warn('--plaintext: no end-to-end encryption; the hub can read this traffic');
    const { proxy, source } = createServiceApp({
      connectionString: cs,
      deviceId: o.deviceId,
      forwards,
      ...(socks ? { socks } : {}),
      ...(o.plaintext ? { encrypt: false } : {}),
      ...security,
      ...(o.crypto ? { crypto: o.crypto } : {}),
      ...(o.resume ? {} : { resume: false }),
      ...(o.waitTimeout !== undefined ? { waitTimeoutMs: o.waitTimeout } : {}),
      ...(await hubTrust(cs, o.ca)),
      onState: (state, err) => (state === 'closed' && err ? log.warn({ err: err.message }, 'device stream closed') : log.info({ state }, 'device stream')),
      onResume: (e) => {
        if (e.kind === 'resumed') log.info({ sessionId: e.sessionId, ...e.info }, 'device session resumed on a new stream');
        else if (e.kind === 'suspended') log.warn({ sessionId: e.sessionId, err: e.error?.message }, 'device stream dropped; resuming');
        else if (e.kind === 'attemptFailed') log.debug({ sessionId: e.sessionId, attempt: e.attempt, err: e.error.message }, 'resume attempt failed');
        else log.warn({ sessionId: e.sessionId, err: e.error.message }, 'device session lost');
      },
      onConnection: (e) => {
        const fields = { listener: e.listener, target: e.target, outcome: e.outcome, code: (e.error as { code?: string } | undefined)?.code, error: e.error?.message };
        // A refusal or reset is news to the user ("why did my ssh drop?"); clean opens and closes are not.
        if (e.error) log.warn(fields, e.outcome === 'failed' ? 'connection failed' : 'connection ended with an error');
        else log.debug(fields, 'connection');
      },
    });
    const listeners = await proxy.start();
    for (const l of listeners) process.stdout.write(l.kind === 'forward' ? `forward ${l.host}:${l.port} -> ${l.target}\n` : `socks ${l.host}:${l.port}\n`);
    log.info({ deviceId: o.deviceId, listeners }, 'service proxy ready');
    const control = o.control ? await serveControl(o.controlPath ?? defaultControlPath(parsePolicyConnectionString(cs).hostName, o.deviceId), source, log) : undefined;
    onShutdown(log, async () => {
      await control?.();
      await proxy.stop();
    });
    process.on('SIGUSR2', () => {
      const had = source.peek() !== undefined;
      source.close().then(
        () => log.info({ signal: 'SIGUSR2', hadStream: had }, 'device stream dropped'),
        (err: Error) => log.warn({ signal: 'SIGUSR2', err: err.message }, 'device stream drop failed'),
      );
    });
    if (o.eager) {
      // Opening early is a convenience: a failure here is logged and retried by the next connection.
      await proxy.warmUp().catch((err: Error) => log.warn({ err: err.message }, 'device stream did not open at start; will retry on first connection'));
    }
  }));
  return cmd;
}
