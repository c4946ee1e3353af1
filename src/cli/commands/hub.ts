/** `devstreams hub`: run a hub node. */
import { Command, InvalidArgumentError } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DevstreamsError } from '../../errors.js';
import { Hub, createSelfSignedCertificate, serveMetrics, type HubStartOptions, type MetricsListener } from '../../hub/index.js';
import { createLogger, withLogOptions, type LogFormat } from '../log.js';
import { action } from '../fail.js';
import { withConfigFile } from '../config-file.js';
import { othersCanRead, readSecretFile } from '../secret-file.js';
import { pemCertificateSha256 } from '../../transport/index.js';

/** Parses `HOST:PORT` (IPv6 as `[::1]:PORT`). */
export function parseListen(value: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):(\d{1,5})$/.exec(value);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new InvalidArgumentError('expected HOST:PORT, e.g. 127.0.0.1:8443');
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

function positiveNumber(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError('expected a non-negative number');
  return n;
}

interface HubCliOpts {
  listen: { host: string; port: number };
  data?: string;
  redis?: string;
  advertise?: string;
  publicHost?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsSelfSigned?: boolean;
  insecure?: boolean;
  streamRate?: number;
  maxConnections?: number;
  refusalsPerAddress?: number;
  fleetSecretFile?: string;
  redisCa?: string;
  metricsListen?: { host: string; port: number };
  logLevel: string;
  logFormat?: LogFormat;
}

/** `devstreams hub`: runs one hub node (file registry) or a fleet node (Redis). */
export function hubCommand(): Command {
  const cmd = new Command('hub')
    .description('run a hub: device control sockets, stream rendezvous and relay, registry API')
    .requiredOption('--listen <host:port>', 'address to listen on', parseListen)
    .option('--data <dir>', 'data directory (registry, generated certificate); one node')
    .option(
      '--redis <url>',
      'fleet mode: registry, presence and stream routing in Redis (redis://[:password@]host:port[/db], rediss:// for TLS)',
    )
    .option(
      '--fleet-secret-file <file>',
      'with --redis: the fleet secret (at least 32 bytes, the same file on every node, not in Redis; e.g. openssl rand -base64 48); signs messages between nodes',
    )
    .option('--redis-ca <file>', 'CA certificate (PEM) of a rediss:// Redis with a private CA')
    .option(
      '--public-host <name>',
      'host[:port] clients use and tokens are scoped to (default: the listen address); the same on every node of a fleet',
    )
    .option('--advertise <host:port>', "this node's own address for stream URLs (fleet; default: the listen address)")
    .option('--tls-cert <file>', 'TLS certificate (PEM)')
    .option('--tls-key <file>', 'TLS private key (PEM)')
    .option(
      '--tls-self-signed',
      'generate (once) a self-signed certificate in DATA/tls (with the openssl program); registry strings pin it by SHA-256, so clients need no --ca',
    )
    .option('--insecure', 'allow plain ws on a non-loopback address')
    .option('--stream-rate <perSecond>', 'stream requests per second before 429 (0: unlimited)', positiveNumber)
    .option(
      '--max-connections <n>',
      'open connections at once; more get 503 (default 10000; keep it below the file-descriptor limit)',
      positiveNumber,
    )
    .option(
      '--metrics-listen <host:port>',
      'serve GET /metrics on this address instead of the hub listener (e.g. an internal 127.0.0.1:9464)',
      parseListen,
    )
    .option(
      '--refusals-per-address <n>',
      'refused credentials per client address per 10 s before it gets 429 unchecked (default 30; 0: off, e.g. behind a proxy that hides addresses)',
      positiveNumber,
    );
  withLogOptions(cmd);
  withConfigFile(cmd);
  cmd.addHelpText(
    'after',
    `
Examples:
  $ devstreams hub --listen 127.0.0.1:8080 --data ./hubdata
  $ devstreams hub --listen 0.0.0.0:8443 --data ./hubdata --public-host hub.example.com:8443 --tls-cert cert.pem --tls-key key.pem
  $ devstreams hub --listen 127.0.0.1:8443 --data ./hubdata --tls-self-signed
  $ devstreams hub --redis redis://:PASSWORD@10.0.0.5:6379 --fleet-secret-file /etc/devstreams/fleet.secret --public-host hub.example.com --listen 0.0.0.0:8443 --advertise node1.example.com:8443 --tls-cert cert.pem --tls-key key.pem`,
  );
  cmd.action(
    action(async (o: HubCliOpts) => {
      const log = createLogger(o);
      if ((o.tlsCert === undefined) !== (o.tlsKey === undefined))
        throw new DevstreamsError('ERR_CONFIG', '--tls-cert and --tls-key go together');
      if (o.tlsSelfSigned && o.tlsCert !== undefined)
        throw new DevstreamsError('ERR_CONFIG', '--tls-self-signed excludes --tls-cert/--tls-key');
      if ((o.data === undefined) === (o.redis === undefined))
        throw new DevstreamsError('ERR_CONFIG', 'give exactly one of --data DIR (one node) or --redis URL (fleet)');
      if (o.advertise !== undefined) parseListen(o.advertise);
      // The CLI's hub is the process: its metrics include the process and Node.js runtime.
      const opts: HubStartOptions = { host: o.listen.host, port: o.listen.port, logger: log, processMetrics: true };
      if (o.metricsListen !== undefined) opts.metricsOnMainListener = false;
      if (o.data !== undefined) opts.dataDir = o.data;
      if (o.redis !== undefined) {
        if (o.fleetSecretFile === undefined)
          throw new DevstreamsError(
            'ERR_CONFIG',
            "a fleet node needs --fleet-secret-file FILE (the same on every node; make one with 'openssl rand -base64 48 > fleet.secret')",
          );
        const secret = Buffer.from(
          readSecretFile(o.fleetSecretFile, '--fleet-secret-file', (line) => log.warn(line)),
          'utf8',
        );
        let redisCa: Buffer | undefined;
        if (o.redisCa !== undefined) {
          try {
            redisCa = readFileSync(o.redisCa);
          } catch (err) {
            throw new DevstreamsError(
              'ERR_CONFIG',
              `cannot read --redis-ca ${o.redisCa}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
            );
          }
        }
        opts.redis = { url: o.redis, secret, redisCa };
      } else if (o.fleetSecretFile !== undefined || o.redisCa !== undefined)
        throw new DevstreamsError('ERR_CONFIG', '--fleet-secret-file and --redis-ca go with --redis');
      if (o.advertise !== undefined) opts.advertise = o.advertise;
      if (o.publicHost !== undefined) opts.publicHost = o.publicHost;
      if (o.insecure) opts.insecure = true;
      if (o.streamRate !== undefined) opts.streamRatePerSecond = o.streamRate;
      if (o.maxConnections !== undefined) opts.maxConnections = o.maxConnections;
      if (o.refusalsPerAddress !== undefined) opts.refusalsPerAddress = o.refusalsPerAddress;
      if (o.tlsCert !== undefined && o.tlsKey !== undefined) {
        try {
          opts.tls = { cert: readFileSync(o.tlsCert), key: readFileSync(o.tlsKey) };
          const warning = othersCanRead(o.tlsKey);
          if (warning !== undefined) log.warn(warning);
        } catch (err) {
          throw new DevstreamsError('ERR_CONFIG', `cannot read TLS files: ${(err as Error).message}`);
        }
      } else if (o.tlsSelfSigned) {
        if (o.data === undefined) throw new DevstreamsError('ERR_CONFIG', '--tls-self-signed needs --data DIR to keep the certificate');
        const c = createSelfSignedCertificate(join(o.data, 'tls'), (o.publicHost ?? o.listen.host).replace(/:\d+$/, ''));
        opts.tls = { cert: c.cert, key: c.key };
        log.info(
          { caFile: c.certPath, certSha256: pemCertificateSha256(c.cert) },
          'self-signed certificate: the strings registry prints pin it (HubCertSha256), so clients need no --ca',
        );
      }
      const hub = await Hub.start(opts);
      // The fingerprint a connection string can pin (HubCertSha256=...), printed so it can be checked out of band.
      if (opts.tls) log.info({ certSha256: pemCertificateSha256(opts.tls.cert) }, 'TLS certificate');
      let metrics: MetricsListener | undefined;
      if (o.metricsListen !== undefined) {
        try {
          metrics = await serveMetrics(hub.metrics.registry, o.metricsListen.host, o.metricsListen.port);
        } catch (err) {
          await hub.close();
          throw err;
        }
        log.info(
          { metrics: `${o.metricsListen.host}:${metrics.port}` },
          `metrics on http://${o.metricsListen.host.includes(':') ? `[${o.metricsListen.host}]` : o.metricsListen.host}:${metrics.port}/metrics`,
        );
      }
      log.info(
        {
          hostName: hub.hostName,
          advertise: hub.advertiseHost,
          nodeId: hub.nodeId,
          transport: hub.transport,
          data: o.data,
          fleet: o.redis !== undefined,
        },
        `hub ready; print strings with: devstreams registry service-string ${o.redis !== undefined ? '--redis URL' : '--data DIR'}`,
      );
      let stopping = false;
      const stop = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        log.info({ signal }, 'hub stopping');
        void Promise.all([hub.close(), metrics?.close()]).then(() => {
          log.flush();
          process.exit(0);
        });
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
    }),
  );
  return cmd;
}
