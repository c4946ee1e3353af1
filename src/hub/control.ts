/**
 * Device control sockets: one long-lived WebSocket per connected device. Rings devices with
 * stream requests and waits for their answers; checks liveness (ping) and token expiry in one
 * sweep over all sockets, so that an idle device costs its socket and one small record, not
 * timers or closures of its own (10,000 idle devices must fit in a few MiB).
 */
import WebSocket from 'ws';
import { randomBytes } from 'node:crypto';
import { DevstreamsError } from '../errors.js';
import { deviceResource, nowSeconds, parseSasToken, verifySasToken } from '../auth/sas.js';
import type { RegistryStore } from './registry-store.js';
import type { PresenceStore } from './presence.js';
import { CLOSE_CODES, parseDeviceMessage, type StreamRequestMessage, type RenewedMessage } from '../hub-api/control-protocol.js';
import type { HubLogger } from './log.js';

/** How often the sweep checks token expiry (ms). */
export const CONTROL_SWEEP_INTERVAL_MS = 5_000;

/** A device's answer. */
export interface StreamAnswer {
  accept: boolean;
  reason?: string;
}

interface Pending {
  resolve(answer: StreamAnswer): void;
  reject(err: DevstreamsError): void;
  timer: NodeJS.Timeout;
}

/** One connected device. Kept small on purpose. */
class DeviceConnection {
  alive = true;
  pending: Map<string, Pending> | undefined;
  constructor(
    readonly deviceId: string,
    readonly ws: WebSocket,
    /** Token expiry, unix seconds. */
    public expiry: number,
    /** Key the socket authenticated with; a rotation closes the socket. */
    public key: string,
    /** The device's end-to-end public key, as it announced it (base64), if it did. */
    readonly publicKey: string | undefined,
  ) {}
}

const CONN = Symbol('devstreams.control');
type TaggedSocket = WebSocket & { [CONN]?: DeviceConnection };

/** What the control plane needs from the hub that wires it: stores, identity, limits and logger. */
export interface ControlPlaneOptions {
  registry: RegistryStore;
  presence: PresenceStore;
  nodeId: string;
  hostName: () => string;
  clockSkewSeconds: number;
  pingIntervalMs: number;
  maxPendingPerDevice: number;
  /** Bytes queued toward one device above which an answer it provokes (renewed) closes it instead. */
  controlSendLimit: number;
  log: HubLogger;
}

/** The hub node's device control sockets: attaches them, rings devices and sweeps them for liveness and token expiry. */
export class ControlPlane {
  private readonly conns = new Map<string, DeviceConnection>();
  /**
   * When each device last connected or disconnected at this node (ms since epoch), for status
   * queries. One number per device that ever connected here, so bounded by the registry.
   */
  private readonly seen = new Map<string, number>();
  private readonly sweepTimer: NodeJS.Timeout;
  private lastPing = Date.now();

  constructor(private readonly o: ControlPlaneOptions) {
    this.sweepTimer = setInterval(() => this.sweep(), Math.min(CONTROL_SWEEP_INTERVAL_MS, o.pingIntervalMs));
    this.sweepTimer.unref();
  }

  get connectedCount(): number {
    return this.conns.size;
  }

  isConnected(deviceId: string): boolean {
    return this.conns.has(deviceId);
  }

  /** When the device last connected or disconnected at this node (ms since epoch), if it did. */
  lastSeen(deviceId: string): number | undefined {
    return this.conns.has(deviceId) ? Date.now() : this.seen.get(deviceId);
  }

  /** The end-to-end public key a connected device announced (base64), if any. */
  devicePublicKey(deviceId: string): string | undefined {
    return this.conns.get(deviceId)?.publicKey;
  }

  /** Ids of the devices connected to this node. */
  deviceIds(): string[] {
    return [...this.conns.keys()];
  }

  /** Closes a device's socket because it reconnected at another node (4409). */
  evict(deviceId: string): void {
    const conn = this.conns.get(deviceId);
    if (!conn) return;
    this.o.log.info({ deviceId }, 'closing control socket: device reconnected at another node');
    conn.ws.close(CLOSE_CODES.replaced, 'ERR_DEVICE_REPLACED');
  }

  /** A shared presence store may fail (Redis down): log it; the fleet's refresh loop repairs it. */
  private record(result: Promise<void> | void, deviceId: string): void {
    if (result instanceof Promise)
      result.catch((err: unknown) => this.o.log.warn({ deviceId, err: (err as Error).message }, 'cannot record device presence'));
  }

  /** Takes over a freshly upgraded, authenticated control socket. */
  attach(deviceId: string, ws: WebSocket, tokenExpiry: number, key: string, publicKey?: string): void {
    const conn = new DeviceConnection(deviceId, ws, tokenExpiry, key, publicKey);
    (ws as TaggedSocket)[CONN] = conn;
    const old = this.conns.get(deviceId);
    this.conns.set(deviceId, conn);
    this.seen.set(deviceId, Date.now());
    if (old) {
      this.failPending(old, new DevstreamsError('ERR_DEVICE_OFFLINE', `device ${deviceId} reconnected`));
      old.ws.close(CLOSE_CODES.replaced, 'ERR_DEVICE_REPLACED');
    }
    this.record(this.o.presence.setOnline(deviceId, this.o.nodeId), deviceId);
    ws.on('message', onControlMessage);
    ws.on('pong', onControlPong);
    ws.on('close', onControlClose);
    ws.on('error', onControlError);
    (ws as unknown as { [PLANE]: ControlPlane })[PLANE] = this;
  }

  /** Rings the device; resolves with its answer or rejects on timeout / disconnect. */
  ring(deviceId: string, request: Omit<StreamRequestMessage, 'type' | 'requestId'>, timeoutMs: number): Promise<StreamAnswer> {
    const conn = this.conns.get(deviceId);
    if (!conn || conn.ws.readyState !== WebSocket.OPEN)
      return Promise.reject(new DevstreamsError('ERR_DEVICE_OFFLINE', `device ${deviceId} is not connected`));
    conn.pending ??= new Map();
    if (conn.pending.size >= this.o.maxPendingPerDevice) {
      return Promise.reject(new DevstreamsError('ERR_RATE_LIMITED', `device ${deviceId} has too many stream requests waiting`));
    }
    const requestId = randomBytes(9).toString('base64url');
    return new Promise<StreamAnswer>((resolve, reject) => {
      const timer = setTimeout(() => {
        conn.pending?.delete(requestId);
        reject(new DevstreamsError('ERR_STREAM_TIMEOUT', `device ${deviceId} did not answer within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      conn.pending!.set(requestId, { resolve, reject, timer });
      const msg: StreamRequestMessage = { type: 'streamRequest', requestId, ...request };
      conn.ws.send(JSON.stringify(msg));
    });
  }

  /**
   * True when an answer the device provoked may be queued: a device that renews without reading
   * the answers would otherwise make the hub queue them without limit (pings are bounded by ws
   * itself: past 60 unsent automatic pongs it cuts the socket off). Past `controlSendLimit` it is
   * cut off at once (a close frame would wait behind what it does not read).
   */
  mayAnswer(conn: DeviceConnection): boolean {
    if (conn.ws.bufferedAmount <= this.o.controlSendLimit) return true;
    this.o.log.warn(
      { deviceId: conn.deviceId, code: 'ERR_PROTOCOL_FLOOD', queued: conn.ws.bufferedAmount },
      'closing control socket: answers pile up unread',
    );
    conn.ws.terminate();
    return false;
  }

  handleMessage(conn: DeviceConnection, data: Buffer, isBinary: boolean): void {
    const msg = isBinary ? undefined : parseDeviceMessage(data.toString('utf8'));
    if (!msg) {
      this.o.log.warn({ deviceId: conn.deviceId }, 'malformed control message');
      conn.ws.close(CLOSE_CODES.protocol, 'ERR_BAD_REQUEST');
      return;
    }
    if (msg.type === 'streamResponse') {
      const p = conn.pending?.get(msg.requestId);
      if (!p) return; // answered too late: the request already timed out
      conn.pending!.delete(msg.requestId);
      clearTimeout(p.timer);
      p.resolve(msg.reason !== undefined ? { accept: msg.accept, reason: msg.reason } : { accept: msg.accept });
      return;
    }
    // renew: same scope and key rules as the upgrade
    try {
      const token = parseSasToken(msg.token);
      if (token.keyName !== undefined || token.resource.toLowerCase() !== deviceResource(this.o.hostName(), conn.deviceId).toLowerCase()) {
        throw new DevstreamsError('ERR_AUTH_SCOPE', 'renewal token has the wrong scope');
      }
      const rec = this.o.registry.getDevice(conn.deviceId);
      if (!rec) throw new DevstreamsError('ERR_AUTH_INVALID', 'device no longer registered');
      verifySasToken(token, rec.key, { clockSkewSeconds: this.o.clockSkewSeconds });
      conn.expiry = token.expiry;
      conn.key = rec.key;
      const reply: RenewedMessage = { type: 'renewed', expiresAt: token.expiry };
      if (this.mayAnswer(conn)) conn.ws.send(JSON.stringify(reply));
    } catch (err) {
      const code = err instanceof DevstreamsError ? err.code : 'ERR_AUTH_INVALID';
      conn.ws.close(CLOSE_CODES.authExpired, code);
    }
  }

  handleClose(conn: DeviceConnection, code?: number): void {
    if (this.conns.get(conn.deviceId) === conn) {
      this.o.log.info({ deviceId: conn.deviceId, code }, 'device disconnected');
      this.conns.delete(conn.deviceId);
      this.seen.set(conn.deviceId, Date.now());
      this.record(this.o.presence.setOffline(conn.deviceId, this.o.nodeId), conn.deviceId);
    }
    this.failPending(conn, new DevstreamsError('ERR_DEVICE_OFFLINE', `device ${conn.deviceId} disconnected`));
  }

  private failPending(conn: DeviceConnection, err: DevstreamsError): void {
    if (!conn.pending) return;
    for (const p of conn.pending.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    conn.pending.clear();
  }

  /** Closes sockets whose device was removed or whose key changed; called on registry change. */
  revokeStale(): void {
    for (const conn of this.conns.values()) {
      const rec = this.o.registry.getDevice(conn.deviceId);
      if (!rec || rec.key !== conn.key) {
        this.o.log.info({ deviceId: conn.deviceId }, 'closing control socket: device removed or key rotated');
        conn.ws.close(CLOSE_CODES.authRevoked, 'ERR_AUTH_INVALID');
      }
    }
  }

  private sweep(): void {
    const now = nowSeconds();
    const doPing = Date.now() - this.lastPing >= this.o.pingIntervalMs;
    if (doPing) this.lastPing = Date.now();
    for (const conn of this.conns.values()) {
      if (conn.expiry + this.o.clockSkewSeconds < now) {
        conn.ws.close(CLOSE_CODES.authExpired, 'ERR_AUTH_EXPIRED');
        continue;
      }
      if (doPing) {
        if (!conn.alive) {
          conn.ws.terminate();
          continue;
        }
        conn.alive = false;
        conn.ws.ping();
      }
    }
  }

  /** Closes every control socket (hub shutdown). */
  close(): void {
    clearInterval(this.sweepTimer);
    for (const conn of this.conns.values()) {
      this.failPending(conn, new DevstreamsError('ERR_HUB_SHUTDOWN', 'hub is shutting down'));
      conn.ws.close(CLOSE_CODES.shutdown, 'ERR_HUB_SHUTDOWN');
    }
  }
}

const PLANE = Symbol('devstreams.plane');
type PlaneSocket = TaggedSocket & { [PLANE]?: ControlPlane };

// Shared listeners (one function for all sockets, `this` is the socket): no closures per device.
function onControlMessage(this: PlaneSocket, data: Buffer, isBinary: boolean): void {
  const conn = this[CONN];
  if (conn) this[PLANE]?.handleMessage(conn, data, isBinary);
}
function onControlPong(this: PlaneSocket): void {
  const conn = this[CONN];
  if (conn) conn.alive = true;
}
function onControlClose(this: PlaneSocket, code: number): void {
  const conn = this[CONN];
  if (conn) this[PLANE]?.handleClose(conn, code);
}
function onControlError(this: PlaneSocket): void {
  // 'close' follows; nothing to do but keep the error from becoming uncaught.
}
