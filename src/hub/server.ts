/**
 * The hub: one HTTP(S) server on one port serving the main endpoint (device control sockets,
 * stream requests, registry API, health, metrics) and the streaming endpoint (pair + relay).
 * This file wires them together (the composition root); routing lives in routes.ts, device
 * sockets in `ControlPlane`, stream sockets in `StreamPairer`, credentials in `DeviceRegistry`.
 */
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { WebSocketServer } from 'ws';
import { DevstreamsError } from '../errors.js';
import { formatConnectionString, type HubTransport } from '../auth/connection-string.js';
import { resolveHubConfig, type HubConfig, type HubOptions } from './config.js';
import { DeviceRegistry, type DeviceRecord } from './registry.js';
import { MemoryPresenceStore, MemoryStreamRouter, type PresenceStore, type StreamRouter } from './presence.js';
import { ControlPlane } from './control.js';
import { StreamPairer } from './streams.js';
import { HubMetrics } from './metrics.js';
import { TokenBucket } from './rate-limit.js';
import { Admission } from './admission.js';
import { refuseUpgrade } from './http-errors.js';
import type { RelayStats } from './splice.js';
import { ringLocal } from './stream-request.js';
import { HubRoutes, type HubRouteContext } from './routes.js';
import type { RegistryStore } from './registry-store.js';
import type { Fleet, FleetOptions } from './fleet/fleet.js';
import { SILENT_LOGGER, type HubLogger } from './log.js';

export type { HubLogger } from './log.js';

/** What `Hub.start` takes: the hub's limits plus where it listens, where its registry lives (directory or Redis), TLS and logger. */
export interface HubStartOptions extends HubOptions {
  /** Registry directory (one node); required unless `redis` is given. */
  dataDir?: string;
  /**
   * Fleet mode: registry, presence and stream routing in Redis (URL or options). Nodes of one
   * fleet share `publicHost`; each gives its own `advertise` address.
   */
  redis?: string | FleetOptions;
  /** `host:port` of this node's streaming endpoint in stream URLs (default: `publicHost`). */
  advertise?: string;
  /** Listen address; default 127.0.0.1. */
  host?: string;
  /** Listen port; 0 (the default) picks a free one. */
  port?: number;
  /** TLS certificate and key (PEM). Without them the hub serves plain HTTP/WebSocket. */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Allow plain HTTP/WebSocket on a non-loopback address. */
  insecure?: boolean;
  logger?: HubLogger;
  presence?: PresenceStore;
  router?: StreamRouter;
  /** This node's id in the presence store. */
  nodeId?: string;
  /** Also export prom-client's default process and Node.js metrics (one hub per process should). Default false. */
  processMetrics?: boolean;
  /** Serve `GET /metrics` on the hub's own listener. Default true; false when a separate listener serves them (`serveMetrics`). */
  metricsOnMainListener?: boolean;
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** One hub node: wires the stores, control plane, pairer and routes to its listener (routing itself is in routes.ts). */
export class Hub {
  readonly config: HubConfig;
  readonly registry: RegistryStore;
  readonly metrics: HubMetrics;
  private readonly metricsOnMainListener: boolean;
  private readonly server: http.Server | https.Server;
  private readonly controlWss: WebSocketServer;
  private readonly control: ControlPlane;
  private readonly pairer: StreamPairer;
  private readonly router: StreamRouter;
  private readonly presence: PresenceStore;
  private readonly bucket: TokenBucket;
  private readonly admission: Admission;
  private readonly log: HubLogger;
  private closed = false;
  private publicHost = '';
  readonly transport: HubTransport;
  private boundPort = 0;
  private readonly unwatch: () => void;
  /** The one context every route works from (routes.ts). */
  private readonly context: HubRouteContext;
  private readonly routes: HubRoutes;

  private advertised = '';
  readonly nodeId: string;

  private constructor(
    o: HubStartOptions,
    registry: RegistryStore,
    nodeId: string,
    private readonly fleet: Fleet | undefined,
  ) {
    this.config = resolveHubConfig(o);
    this.log = o.logger ?? SILENT_LOGGER;
    this.registry = registry;
    this.nodeId = nodeId;
    this.presence = fleet?.presence ?? o.presence ?? new MemoryPresenceStore();
    this.router = o.router ?? new MemoryStreamRouter();
    this.transport = o.publicTransport ?? (o.tls ? 'wss' : 'ws');
    this.bucket = new TokenBucket(this.config.streamRatePerSecond, this.config.streamRateBurst);
    this.control = new ControlPlane({
      registry: this.registry,
      presence: this.presence,
      nodeId,
      hostName: () => this.publicHost,
      clockSkewSeconds: this.config.clockSkewSeconds,
      pingIntervalMs: this.config.controlPingIntervalMs,
      maxPendingPerDevice: this.config.maxPendingPerDevice,
      controlSendLimit: this.config.controlSendLimit,
      log: this.log,
    });
    this.metrics = new HubMetrics({
      connectedDevices: () => this.control.connectedCount,
      activeStreams: () => this.pairer.activeCount,
      processMetrics: o.processMetrics,
    });
    this.metricsOnMainListener = o.metricsOnMainListener ?? true;
    this.pairer = new StreamPairer({
      pairTimeoutMs: this.config.streamPairTimeoutMs,
      limits: {
        highWater: this.config.relayHighWater,
        maxFramePayload: this.config.relayMaxMessage,
        readBytes: this.config.relayReadBytes,
        idleReadBufferMs: this.config.relayIdleReadBufferMs,
        turnReadBytes: this.config.relayTurnReadBytes,
      },
      onBytes: (n) => {
        this.metrics.bytesRelayed += n;
      },
      onPaired: (ms) => this.metrics.paired(ms),
      log: this.log,
    });
    this.registry.onExternalChange = () => this.control.revokeStale();
    this.unwatch = this.registry.watch();
    this.controlWss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: this.config.controlMaxMessage,
      clientTracking: false,
    });
    // A bad handshake header (key, version, protocol) would get ws's plain-text 400; answer it
    // like every other refusal, with a JSON {code, message}.
    const badHandshake = (err: Error, socket: Duplex): void => refuseUpgrade(socket, new DevstreamsError('ERR_BAD_REQUEST', err.message));
    this.controlWss.on('wsClientError', badHandshake);
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      this.admission.requestStarted(req.socket);
      this.routes.handleRequest(req, res).catch((err: unknown) => this.routes.fail(res, err, req));
    };
    const c = this.config;
    // Node checks the header and request timeouts every connectionsCheckingInterval (30 s by default).
    const timeouts = {
      headersTimeout: c.headersTimeoutMs,
      requestTimeout: c.requestTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, c.headersTimeoutMs),
    };
    this.server = o.tls
      ? https.createServer({ cert: o.tls.cert, key: o.tls.key, handshakeTimeout: c.idleTimeoutMs, ...timeouts }, handler)
      : http.createServer(timeouts, handler);
    this.admission = new Admission({
      maxConnections: c.maxConnections,
      idleTimeoutMs: c.idleTimeoutMs,
      refusalsPerAddress: c.refusalsPerAddress,
      refusalWindowMs: c.refusalWindowMs,
      refusalLogLines: c.refusalLogLines,
      tls: o.tls !== undefined,
      onRefused: (reason) => this.metrics.refused(reason),
      log: (fields, msg) => this.log.warn(fields, msg),
    });
    this.admission.attach(this.server);
    this.context = {
      config: this.config,
      registry: this.registry,
      presence: this.presence,
      router: this.router,
      control: this.control,
      metrics: this.metrics,
      log: this.log,
      hostName: () => this.publicHost,
      bucket: this.bucket,
      transport: this.transport,
      advertiseHost: () => this.advertised,
      fleet: fleet && { nodeId, forward: (node, deviceId, name, t) => fleet.forward(node, deviceId, name, t) },
      pendingByService: new Map(),
      serviceBuckets: new Map(),
      deviceConnectionString: (rec) => this.deviceConnectionString(rec),
      admission: this.admission,
      controlWss: this.controlWss,
      pairer: this.pairer,
      metricsOnMainListener: this.metricsOnMainListener,
      isClosed: () => this.closed,
    };
    this.routes = new HubRoutes(this.context);
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => {});
      this.admission.requestStarted(req.socket);
      this.routes.handleUpgrade(req, socket, head).catch((err: unknown) => this.routes.refuse(socket, err, req));
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
        this.metrics.refused('request_timeout');
        refuseUpgrade(
          socket,
          new DevstreamsError(
            'ERR_REQUEST_TIMEOUT',
            `request not received within ${c.headersTimeoutMs} ms (headers) / ${c.requestTimeoutMs} ms (whole)`,
          ),
        );
        return;
      }
      refuseUpgrade(socket, new DevstreamsError('ERR_BAD_REQUEST', 'malformed HTTP request'));
    });
  }

  /** Starts a hub and resolves once it listens. */
  static async start(o: HubStartOptions): Promise<Hub> {
    const host = o.host ?? '127.0.0.1';
    if (!o.tls && !o.insecure && !isLoopback(host)) {
      throw new DevstreamsError('ERR_CONFIG', `refusing plain WebSocket on non-loopback address ${host}; give TLS flags or --insecure`);
    }
    const nodeId = o.nodeId ?? randomBytes(6).toString('hex');
    const log = o.logger ?? SILENT_LOGGER;
    let fleet: Fleet | undefined;
    let registry: RegistryStore;
    if (o.redis !== undefined) {
      const fo: FleetOptions = typeof o.redis === 'string' ? { url: o.redis } : o.redis;
      // Loaded only for a fleet: ioredis and the fleet code would otherwise sit in every hub's
      // heap, and each major GC (frequent under relay load: 64 KiB socket reads) walks it.
      const { Fleet: FleetImpl } = await import('./fleet/fleet.js');
      fleet = await FleetImpl.connect(fo, nodeId, (level, msg, fields = {}) => log[level](fields, msg));
      registry = fleet.registry;
    } else {
      if (o.dataDir === undefined) throw new DevstreamsError('ERR_CONFIG', 'the hub needs a data directory or a Redis URL');
      registry = DeviceRegistry.open(o.dataDir);
    }
    let hub: Hub;
    try {
      hub = new Hub(o, registry, nodeId, fleet);
    } catch (err) {
      await fleet?.close([]);
      throw err;
    }
    await new Promise<void>((resolve, reject) => {
      // A taken or forbidden address is the operator's to fix: ERR_CONFIG, worded like the proxies'.
      const onListenError = (err: NodeJS.ErrnoException): void => {
        void hub.close();
        reject(new DevstreamsError('ERR_CONFIG', `cannot listen on ${host}:${o.port ?? 0}: ${err.code ?? err.message}`, { cause: err }));
      };
      hub.server.once('error', onListenError);
      hub.server.listen(o.port ?? 0, host, () => {
        hub.server.off('error', onListenError);
        resolve();
      });
    });
    // After listen, server errors (e.g. EMFILE on accept) are logged, never fatal.
    hub.server.on('error', (err: Error) => hub.log.error({ err: err.message }, 'hub server error'));
    hub.boundPort = (hub.server.address() as AddressInfo).port;
    const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
    hub.publicHost = o.publicHost ?? `${hostPart === '0.0.0.0' || hostPart === '[::]' ? '127.0.0.1' : hostPart}:${hub.boundPort}`;
    // A fleet shares publicHost; each node's streams must point at the node itself.
    hub.advertised =
      o.advertise ??
      (fleet ? `${hostPart === '0.0.0.0' || hostPart === '[::]' ? '127.0.0.1' : hostPart}:${hub.boundPort}` : hub.publicHost);
    try {
      await hub.registry.setEndpoint({ hostName: hub.publicHost, transport: hub.transport });
      if (fleet) {
        const h = hub;
        await fleet.start({
          deviceIds: () => h.control.deviceIds(),
          evict: (deviceId) => h.control.evict(deviceId),
          ring: (deviceId, name, t) => ringLocal(h.context, deviceId, name, t),
        });
      }
    } catch (err) {
      await hub.close();
      throw err;
    }
    hub.log.info(
      {
        hostName: hub.publicHost,
        advertise: hub.advertised,
        port: hub.boundPort,
        transport: hub.transport,
        nodeId,
        fleet: fleet !== undefined,
      },
      'hub listening',
    );
    return hub;
  }

  get port(): number {
    return this.boundPort;
  }

  /** `host:port` of this node's streaming endpoint, as put in stream URLs. */
  get advertiseHost(): string {
    return this.advertised;
  }

  /** Name tokens are scoped to (`host:port`). */
  get hostName(): string {
    return this.publicHost;
  }

  /** Connection string for a device (as the hub would print it). */
  deviceConnectionString(rec: DeviceRecord): string {
    return formatConnectionString({
      kind: 'device',
      hostName: this.publicHost,
      deviceId: rec.deviceId,
      sharedAccessKey: rec.key,
      transport: this.transport,
    });
  }

  /** Connection string for a policy. */
  policyConnectionString(policy: 'service' | 'owner'): string {
    return formatConnectionString({
      kind: 'policy',
      hostName: this.publicHost,
      policy,
      sharedAccessKey: this.registry.policyKey(policy)!,
      transport: this.transport,
    });
  }

  /** Relay statistics of a paired stream (tests, diagnostics). */
  streamStats(streamId: string): RelayStats | undefined {
    return this.pairer.stats(streamId);
  }

  get connectedDevices(): number {
    return this.control.connectedCount;
  }

  get activeStreams(): number {
    return this.pairer.activeCount;
  }

  /** Stops accepting, closes every socket, resolves once the server is closed. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unwatch();
    const devices = this.control.deviceIds();
    this.control.close();
    this.pairer.close();
    const done = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await Promise.all([done, this.fleet?.close(devices)]);
  }
}
