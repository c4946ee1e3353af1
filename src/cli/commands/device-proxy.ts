/** `devstreams device-proxy`: the device-side local proxy. */
import { Command } from 'commander';
import { AuthorizedServices, encodePublicKey } from '../../crypto/index.js';
import {
  AllowList,
  DEFAULT_MAX_DEVICE_SESSIONS,
  DEFAULT_MAX_DEVICE_STARTING,
  DeviceProxy,
  defaultAuthorizedServicesPath,
  defaultDeviceKeyPath,
  loadOrCreateKeyPair,
} from '../../proxy/index.js';
import { parseDeviceConnectionString } from '../../auth/index.js';
import { createLogger, withLogOptions, type LogFormat } from '../log.js';
import { action, fail } from '../fail.js';
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
  parsePublicKeys,
  hubTrust,
  connectionStringOptions,
  type ConnectionStringFlags,
  connectionSummary,
} from '../common.js';
import { withConfigFile } from '../config-file.js';
import type { CryptoMode } from '../../crypto/index.js';

interface DeviceProxyCliOpts extends ConnectionStringFlags {
  allow?: string[];
  key?: string;
  serviceKey?: string[];
  authorizedServices?: string;
  acceptAnyService?: boolean;
  maxSessions?: number;
  allowPlaintext?: boolean;
  crypto?: CryptoMode;
  connectTimeout?: number;
  queueTargetMs?: number;
  pacePercent?: number;
  ca?: string;
  logLevel: string;
  logFormat?: LogFormat;
}

/** `devstreams device-proxy`: runs a DeviceProxy from flags, a config file and key files. */
export function deviceProxyCommand(): Command {
  const cmd = connectionStringOptions(
    new Command('device-proxy').description(
      'device side: keep a control socket to the hub and connect tunnelled channels to allowed local targets',
    ),
    'device',
  )
    .option(
      '--allow <host:port>',
      'a target channels may reach; repeatable. HOST:*, CIDR:PORT and CIDR:* work too. Nothing is reachable by default',
      collect,
    )
    .option('--key <file>', 'device key file (created on first use; default $DEVSTREAMS_HOME/devices/<id>.key)')
    .option('--service-key <base64>', 'also let the service with this key open sessions; repeatable', collect)
    .option(
      '--authorized-services <file>',
      "the services that may open sessions, one 'x25519 KEY NAME' line each, read at every session (default $DEVSTREAMS_HOME/authorized_services; 'devstreams key authorize' adds to it)",
    )
    .option(
      '--accept-any-service',
      'let any service key in: then every holder of a service credential, and the hub itself, can reach the allowed targets',
    )
    .option(
      '--max-sessions <n>',
      `established sessions open at once; more stream requests are rejected (default ${DEFAULT_MAX_DEVICE_SESSIONS}). Streams still in their handshake count apart: past ${DEFAULT_MAX_DEVICE_STARTING} the oldest is dropped`,
      parsePositiveInt,
    )
    .option('--allow-plaintext', 'also accept streams without end-to-end encryption (the hub could read them)')
    .option('--crypto <mode>', 'where records are sealed: inline, workers or auto', parseCryptoMode)
    .option('--connect-timeout <seconds>', 'how long a connect to a target may take (default 10)', parsePositiveMs)
    .option(QUEUE_TARGET_FLAG, QUEUE_TARGET_HELP, parsePositiveInt)
    .option(PACE_PERCENT_FLAG, PACE_PERCENT_HELP, parsePercent)
    .option('--ca <file>', 'extra CA certificate (PEM) for a hub with a self-signed certificate');
  withLogOptions(cmd);
  withConfigFile(cmd);
  cmd.addHelpText(
    'after',
    `
Examples:
  $ devstreams key authorize "$OPERATOR_KEY" --name alice   # the key 'devstreams key show' printed for the operator
  $ devstreams device-proxy --connection-string-file sensor-17.cs --allow 127.0.0.1:22
  $ DEVSTREAMS_CONNECTION_STRING=... devstreams device-proxy --allow 127.0.0.1:* --allow 10.0.0.0/24:502

The device's public key is logged at start; give it to services that pin keys
(or let them trust it on first use).`,
  );
  cmd.action(
    action(async (o: DeviceProxyCliOpts) => {
      const log = createLogger(o);
      const cs = connectionStringFrom(o, (line) => log.warn(line));
      const deviceId = parseDeviceConnectionString(cs).deviceId;
      const allow = new AllowList(o.allow ?? []);
      if (allow.size === 0) log.warn('no --allow given: every channel will be refused');
      const keyPath = o.key ?? defaultDeviceKeyPath(deviceId);
      const { keys, created } = await loadOrCreateKeyPair(keyPath);
      const serviceKeys = parsePublicKeys(o.serviceKey, '--service-key');
      const authorized = new AuthorizedServices(o.authorizedServices ?? defaultAuthorizedServicesPath());
      if (!o.acceptAnyService) for (const problem of await authorized.problems()) log.warn({ file: authorized.path }, problem);
      if (o.acceptAnyService)
        log.warn(
          '--accept-any-service: any service key is let in; every holder of a service credential, and the hub itself, can reach the allowed targets',
        );
      else if (serviceKeys.length === 0 && (await authorized.list()).length === 0) {
        log.warn(
          { file: authorized.path },
          "no service is authorized: every session will be refused until one is ('devstreams key authorize KEY --name NAME', read at each session)",
        );
      }
      const proxy = new DeviceProxy({
        connectionString: cs,
        allow,
        staticKeys: keys,
        serviceKeys,
        authorizedServices: authorized,
        acceptAnyService: o.acceptAnyService,
        maxSessions: o.maxSessions,
        allowPlaintext: o.allowPlaintext,
        crypto: o.crypto,
        connectTimeoutMs: o.connectTimeout,
        resume: resumeFromFlags(o.queueTargetMs, o.pacePercent),
        ...(await hubTrust(cs, o.ca, (err) => log.warn({ err: err.message }, 'cannot check the hub certificate yet; retrying'))),
      });
      proxy.on('connected', () => log.info({ deviceId, gateway: proxy.client.gateway }, 'control socket connected'));
      proxy.on('disconnected', (err) => log.warn({ err: err?.message }, `control socket lost${err ? ` (${err.message})` : ''}`));
      proxy.on('retrying', (e) =>
        log.warn(
          { gateway: e.gateway, code: e.error.code, delayMs: Math.round(e.delayMs) },
          `${e.error.message}; retrying in ${formatSeconds(e.delayMs)}`,
        ),
      );
      proxy.on('refused', (err) => {
        // Retrying a revoked key or a removed device cannot succeed: say so and exit.
        log.error({ code: err.code }, `the hub refused this device: ${err.message}`);
        log.flush();
        void proxy.stop().finally(() => fail(err));
      });
      proxy.on('session', (s) =>
        log.info(
          { streamId: s.streamId, cipher: s.cipher, suite: s.suite, serviceKey: s.peerKey ? encodePublicKey(s.peerKey) : undefined },
          'device stream open',
        ),
      );
      proxy.on('sessionError', (err) => log.warn({ err: err.message }, 'device stream failed'));
      proxy.on('suspended', (e) =>
        log.warn({ sessionId: e.sessionId, err: e.error?.message }, 'device stream dropped; holding the session for a resume'),
      );
      proxy.on('resumed', (e) => log.info({ ...e, total: proxy.resumeCount }, 'device session resumed on a new stream'));
      proxy.on('lost', (e) => log.warn({ sessionId: e.sessionId, err: e.error.message }, 'device session given up'));
      proxy.on('channel', (e) => {
        // A channel's start is a debug line: below debug it costs no fields and no message.
        if (e.outcome === 'connected' && !log.isLevelEnabled('debug')) return;
        const fields = { target: e.target, outcome: e.outcome, err: e.error?.message };
        // One line per channel at info, when it ends; its start is debug (see the service proxy).
        if (e.outcome === 'connected') log.debug(fields, `channel to ${e.target} connected`);
        else if (e.outcome === 'closed' && !e.error)
          log.info({ ...fields, ...e.stats }, `channel to ${e.target} closed${e.stats ? ` ${connectionSummary(e.stats)}` : ''}`);
        else if (e.outcome === 'not-allowed') log.warn(fields, `channel to ${e.target} refused: not on the allow list (--allow)`);
        else
          log.warn(
            { ...fields, ...e.stats },
            `channel to ${e.target} ${e.outcome}${e.stats ? ` ${connectionSummary(e.stats)}` : ''}${e.error ? `: ${e.error.message}` : ''}`,
          );
      });
      await proxy.start();
      log.info(
        {
          deviceId,
          allow: allow.describe(),
          services: o.acceptAnyService ? 'any' : authorized.path,
          publicKey: encodePublicKey(keys.publicKey),
          keyFile: keyPath,
          keyCreated: created,
          queueTargetMs: o.queueTargetMs,
          pacePercent: o.pacePercent,
        },
        'device proxy ready',
      );
      onShutdown(log, () => proxy.stop());
    }),
  );
  return cmd;
}
