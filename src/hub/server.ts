/**
 * The hub: one HTTP(S) server on one port serving the main endpoint (device control sockets,
 * stream requests, registry API, health, metrics) and the streaming endpoint (pair + relay).
 * Route handlers live here; device sockets live in `ControlPlane`, stream sockets in
 * `StreamPairer`, credentials in `DeviceRegistry`.
 */
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import { DevstreamsError } from '../errors.js';
import { formatConnectionString, isValidDeviceId, type HubTransport } from '../auth/connection-string.js';
import { resolveHubConfig, type HubConfig, type HubOptions } from './config.js';
import { DeviceRegistry, type DeviceRecord } from './registry.js';
import { MemoryPresenceStore, MemoryStreamRouter, type PresenceStore, type StreamRouter } from './presence.js';
import { ControlPlane } from './control.js';
import { DEVICE_KEY_HEADER, isDeviceKey } from '../hub-api/control-protocol.js';
import { StreamPairer } from './streams.js';
import { HubMetrics } from './metrics.js';
import { TokenBucket } from './rate-limit.js';
import { Admission } from './admission.js';
import { authenticateDevice, bearerToken } from './authenticate.js';
import { refuseUpgrade, sendError, toHubError } from './http-errors.js';
import type { RelayStats } from './splice.js';
import { firstSubprotocol, handshakeKey, handshakeResponse } from '../transport/ws-handshake.js';
import { segment, sendJson } from './http-util.js';
import { handleRegistryApi, only, type RegistryApiContext } from './registry-api.js';
import { handleStreamRequest, ringLocal, type StreamRequestContext } from './stream-request.js';
import type { RegistryStore } from './registry-store.js';
import type { Fleet, FleetOptions } from './fleet/fleet.js';

/** The logging calls the hub makes; a pino logger fits. */
export interface HubLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const SILENT: HubLogger = { info() {}, warn() {}, error() {} };

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
  private readonly apiContext: RegistryApiContext;
  private readonly streamContext: StreamRequestContext;

  private advertised = '';
  readonly nodeId: string;

  private constructor(o: HubStartOptions, registry: RegistryStore, nodeId: string, private readonly fleet: Fleet | undefined) {
    this.config = resolveHubConfig(o);
    this.log = o.logger ?? SILENT;
    this.registry = registry;
    this.nodeId = nodeId;
    this.presence = fleet?.presence ?? o.presence ?? new MemoryPresenceStore();
    this.router = o.router ?? new MemoryStreamRouter();
    this.transport = o.publicTransport ?? (o.tls ? 'wss' : 'ws');
    this.bucket = new TokenBucket(this.config.streamRatePerSecond, this.config.streamRateBurst);
    const logFn = (level: 'info' | 'warn', msg: string, fields: Record<string, unknown> = {}): void => this.log[level](fields, msg);
    this.control = new ControlPlane({
      registry: this.registry,
      presence: this.presence,
      nodeId,
      hostName: () => this.publicHost,
      clockSkewSeconds: this.config.clockSkewSeconds,
      pingIntervalMs: this.config.controlPingIntervalMs,
      maxPendingPerDevice: this.config.maxPendingPerDevice,
      controlSendLimit: this.config.controlSendLimit,
      log: logFn,
    });
    this.metrics = new HubMetrics({ connectedDevices: () => this.control.connectedCount, activeStreams: () => this.pairer.activeCount, ...(o.processMetrics ? { processMetrics: true } : {}) });
    this.metricsOnMainListener = o.metricsOnMainListener ?? true;
    this.pairer = new StreamPairer({
      pairTimeoutMs: this.config.streamPairTimeoutMs,
      limits: { highWater: this.config.relayHighWater, maxFramePayload: this.config.relayMaxMessage },
      onBytes: (n) => {
        this.metrics.bytesRelayed += n;
      },
      onPaired: (ms) => this.metrics.paired(ms),
      log: logFn,
    });
    this.apiContext = {
      registry: this.registry,
      control: this.control,
      presence: this.presence,
      hostName: () => this.publicHost,
      clockSkewSeconds: this.config.clockSkewSeconds,
      maxBodyBytes: this.config.maxBodyBytes,
      deviceConnectionString: (rec) => this.deviceConnectionString(rec),
    };
    this.streamContext = {
      config: this.config,
      registry: this.registry,
      presence: this.presence,
      router: this.router,
      control: this.control,
      metrics: this.metrics,
      bucket: this.bucket,
      transport: this.transport,
      hostName: () => this.publicHost,
      advertiseHost: () => this.advertised,
      log: this.log,
      pendingByService: new Map(),
      serviceBuckets: new Map(),
    };
    if (fleet) this.streamContext.fleet = { nodeId, forward: (node, deviceId, name, t) => fleet.forward(node, deviceId, name, t) };
    this.registry.onExternalChange = () => this.control.revokeStale();
    this.unwatch = this.registry.watch();
    this.controlWss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: this.config.controlMaxMessage, clientTracking: false });
    // A bad handshake header (key, version, protocol) would get ws's plain-text 400; answer it
    // like every other refusal, with a JSON {code, message}.
    const badHandshake = (err: Error, socket: Duplex): void => refuseUpgrade(socket, new DevstreamsError('ERR_BAD_REQUEST', err.message));
    this.controlWss.on('wsClientError', badHandshake);
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      this.admission.requestStarted(req.socket);
      this.handleRequest(req, res).catch((err: unknown) => this.fail(res, err, req));
    };
    const c = this.config;
    // Node checks the header and request timeouts every connectionsCheckingInterval (30 s by default).
    const timeouts = { headersTimeout: c.headersTimeoutMs, requestTimeout: c.requestTimeoutMs, connectionsCheckingInterval: Math.min(1000, c.headersTimeoutMs) };
    this.server = o.tls ? https.createServer({ cert: o.tls.cert, key: o.tls.key, handshakeTimeout: c.idleTimeoutMs, ...timeouts }, handler) : http.createServer(timeouts, handler);
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
    this.server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => {});
      this.admission.requestStarted(req.socket);
      this.handleUpgrade(req, socket, head).catch((err: unknown) => this.refuse(socket, err, req));
    });
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
        this.metrics.refused('request_timeout');
        refuseUpgrade(socket, new DevstreamsError('ERR_REQUEST_TIMEOUT', `request not received within ${c.headersTimeoutMs} ms (headers) / ${c.requestTimeoutMs} ms (whole)`));
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
    const log = o.logger ?? SILENT;
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
    hub.advertised = o.advertise ?? (fleet ? `${hostPart === '0.0.0.0' || hostPart === '[::]' ? '127.0.0.1' : hostPart}:${hub.boundPort}` : hub.publicHost);
    try {
      await hub.registry.setEndpoint({ hostName: hub.publicHost, transport: hub.transport });
      if (fleet) {
        const h = hub;
        await fleet.start({
          deviceIds: () => h.control.deviceIds(),
          evict: (deviceId) => h.control.evict(deviceId),
          ring: (deviceId, name, t) => ringLocal(h.streamContext, deviceId, name, t),
        });
      }
    } catch (err) {
      await hub.close();
      throw err;
    }
    hub.log.info({ hostName: hub.publicHost, advertise: hub.advertised, port: hub.boundPort, transport: hub.transport, nodeId, fleet: fleet !== undefined }, 'hub listening');
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
    return formatConnectionString({ kind: 'device', hostName: this.publicHost, deviceId: rec.deviceId, sharedAccessKey: rec.key, transport: this.transport });
  }

  /** Connection string for a policy. */
  policyConnectionString(policy: 'service' | 'owner'): string {
    return formatConnectionString({ kind: 'policy', hostName: this.publicHost, policy, sharedAccessKey: this.registry.policyKey(policy)!, transport: this.transport });
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

  /** Normalises an error and counts (and logs) refused credentials. */
  private count(err: unknown, req: http.IncomingMessage): DevstreamsError {
    const e = toHubError(err);
    if (e.code.startsWith('ERR_AUTH')) {
      // A fixed label set: arbitrary paths must not grow the metric without bound.
      const first = (req.url ?? '').split('/')[1] ?? '';
      const endpoint = first === 'devices' || first === 'twins' || first === 'streams' ? first : 'other';
      this.metrics.authFailure(endpoint, e.code);
      this.admission.refusedCredentials(req.socket.remoteAddress, { code: e.code, method: req.method, path: (req.url ?? '').split('?')[0]!.slice(0, 200), remote: req.socket.remoteAddress });
    }
    return e;
  }

  private fail(res: http.ServerResponse, err: unknown, req: http.IncomingMessage): void {
    const e = this.count(err, req);
    if (e.code === 'ERR_INTERNAL') this.log.error({ err, url: req.url }, 'request failed');
    sendError(res, e);
  }

  private refuse(socket: Duplex, err: unknown, req: http.IncomingMessage): void {
    const e = this.count(err, req);
    if (e.code === 'ERR_INTERNAL') this.log.error({ err, url: req.url }, 'upgrade failed');
    refuseUpgrade(socket, e);
  }

  /** Past its refused credentials, an address gets 429 before anything of its request is checked. */
  private checkAddress(req: http.IncomingMessage): void {
    if (!this.admission.blocked(req.socket.remoteAddress)) return;
    this.admission.addressLimited(req.socket.remoteAddress);
    throw new DevstreamsError('ERR_RATE_LIMITED', `too many refused credentials from this address; retry in ${Math.ceil(this.config.refusalWindowMs / 1000)} s`);
  }

  private async handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    if (this.closed) throw new DevstreamsError('ERR_HUB_SHUTDOWN', 'hub is shutting down');
    this.checkAddress(req);
    const path = (req.url ?? '/').split('?')[0]!;
    const parts = path.split('/');
    if (req.method !== 'GET') throw new DevstreamsError('ERR_METHOD_NOT_ALLOWED', 'WebSocket upgrades use GET');
    if (parts.length === 4 && parts[1] === 'devices' && parts[3] === 'control') {
      const deviceId = segment(parts[2]!);
      if (!isValidDeviceId(deviceId)) throw new DevstreamsError('ERR_BAD_REQUEST', 'invalid device id');
      const who = await authenticateDevice(req, this.registry, this.publicHost, deviceId, this.config.clockSkewSeconds);
      this.controlWss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
        if (this.closed) {
          ws.close(1001, 'ERR_HUB_SHUTDOWN');
          return;
        }
        const announced = req.headers[DEVICE_KEY_HEADER];
        this.control.attach(deviceId, ws, who.expiry, who.key, isDeviceKey(announced) ? announced : undefined);
        this.log.info({ deviceId }, 'device connected');
      });
      return;
    }
    if (parts.length === 3 && parts[1] === 'streams') {
      const streamId = segment(parts[2]!);
      const token = bearerToken(req);
      // Headers first: a malformed upgrade must not use up the single-use token.
      const key = handshakeKey(req);
      const claim = await this.router.claim(streamId, token, Date.now());
      if (!claim.ok) {
        if (claim.why === 'reused') throw new DevstreamsError('ERR_AUTH_TOKEN_REUSED', 'stream token was already used');
        if (claim.why === 'expired') throw new DevstreamsError('ERR_AUTH_EXPIRED', 'stream token expired');
        throw new DevstreamsError('ERR_AUTH_INVALID', 'stream token is not valid for this stream');
      }
      if (this.closed) throw new DevstreamsError('ERR_HUB_SHUTDOWN', 'hub is shutting down');
      if (socket.destroyed) return; // the client gave up while the claim was checked
      // The hub answers the handshake itself and splices frames (splice.ts), without ws.
      socket.write(handshakeResponse(key, firstSubprotocol(req)));
      this.pairer.add(streamId, claim.side, socket as Socket, head);
      return;
    }
    throw new DevstreamsError('ERR_NOT_FOUND', 'no WebSocket endpoint at this path');
  }

  private async handleRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.closed) throw new DevstreamsError('ERR_HUB_SHUTDOWN', 'hub is shutting down');
    const path = (req.url ?? '/').split('?')[0]!;
    const parts = path.split('/');
    const method = req.method ?? 'GET';
    if (path === '/healthz') {
      only(method, path, 'GET');
      sendJson(res, 200, { status: 'ok', connectedDevices: this.control.connectedCount, activeStreams: this.pairer.activeCount, waitingStreams: this.pairer.waitingCount });
      return;
    }
    if (path === '/metrics' && this.metricsOnMainListener) {
      only(method, path, 'GET');
      const text = await this.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': this.metrics.registry.contentType });
      res.end(text);
      return;
    }
    this.checkAddress(req); // health and metrics above carry no credentials
    if (parts.length === 5 && parts[1] === 'twins' && parts[3] === 'streams') {
      only(method, path, 'POST');
      await handleStreamRequest(this.streamContext, req, res, segment(parts[2]!), segment(parts[4]!));
      return;
    }
    if (await handleRegistryApi(this.apiContext, req, res, path, parts, method)) return;
    if (parts.length === 4 && parts[1] === 'devices' && parts[3] === 'control') {
      throw new DevstreamsError('ERR_BAD_REQUEST', 'the control endpoint needs a WebSocket upgrade');
    }
    if (parts.length === 3 && parts[1] === 'streams') {
      throw new DevstreamsError('ERR_BAD_REQUEST', 'the streaming endpoint needs a WebSocket upgrade');
    }
    throw new DevstreamsError('ERR_NOT_FOUND', `no endpoint at ${path.slice(0, 80)}`);
  }
}
