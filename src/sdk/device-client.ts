/**
 * The device SDK: keeps the control socket to the hub up (reconnects with backoff and jitter,
 * renews its token before expiry, notices a silent hub) and hands the application each stream
 * request to accept or reject. With several gateways (`GatewayHostName=h1:p1,h2:p2`, the nodes
 * of a hub fleet) it moves to the next one after each failed attempt or lost connection, so
 * the devices of a node that dies come back through the others.
 *
 * Events: 'connected' (), 'disconnected' (error?), 'streamRequest' (IncomingStreamRequest),
 * 'error' (error: a failed connect attempt; the client keeps retrying until `close()`),
 * 'retrying' (why, and the delay before the next attempt), 'refused' (the hub refused the
 * device's credentials or no longer knows the device: permanent, the client has stopped).
 */
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { DevstreamsError } from '../errors.js';
import { dialHosts, parseDeviceConnectionString, type DeviceConnectionString } from '../auth/connection-string.js';
import { createDeviceToken, DEFAULT_TOKEN_TTL_SECONDS } from '../auth/sas.js';
import type { WebSocketClientTransport } from '../transport/index.js';
import {
  CLOSE_CODES,
  DEVICE_KEY_HEADER,
  parseHubMessage,
  type HubToDevice,
  type StreamRequestMessage,
} from '../hub-api/control-protocol.js';
import { Backoff, type BackoffOptions } from './backoff.js';
import { openStreamTransport, openWebSocket, streamUrlProblem } from './stream-transport.js';
import { TOKEN_RENEW_FRACTION } from './service-client.js';
import type { HeldDeviceSession } from './device-session.js';
import { IncomingStreamRequest } from './incoming-stream.js';
import { ResumeRegistry } from '../resume/index.js';

/** A control socket with no ping or message from the hub for this long is presumed dead, ms. */
export const DEFAULT_HUB_SILENCE_MS = 75_000;
/**
 * Refusals that retrying cannot fix (a rotated key, a removed device, a token for the wrong
 * device): the client stops and emits 'refused' instead of retrying forever in silence.
 */
export const PERMANENT_REFUSAL_CODES: readonly string[] = [
  'ERR_AUTH_INVALID',
  'ERR_AUTH_SCOPE',
  'ERR_AUTH_MISSING',
  'ERR_DEVICE_NOT_FOUND',
];
/** Largest control message the device accepts from the hub, bytes. */
export const CONTROL_MAX_MESSAGE = 64 * 1024;
/**
 * Bytes the device lets queue unsent on its control socket. Its answers are small (a stream
 * response or a renewal, a few hundred bytes), so this much queued means the hub rings faster
 * than it reads: past it the device cuts the socket off and reconnects with backoff, as the hub
 * does towards a device that does not read (its controlSendLimit), instead of queueing without
 * limit for a hostile or broken hub.
 */
export const CONTROL_SEND_LIMIT = 1024 * 1024;

/** Options of a DeviceClient; every field has a default. */
export interface DeviceClientOptions {
  ca?: string | Buffer;
  /**
   * The device's end-to-end public key, announced to the hub on the control socket so that
   * services which trust the hub for device identity can check the handshake against it.
   */
  publicKey?: Buffer;
  tokenTtlSeconds?: number;
  backoff?: BackoffOptions;
  hubSilenceMs?: number;
}

/** Events a DeviceClient emits, with their arguments. */
export interface DeviceClientEvents {
  connected: [];
  disconnected: [error: DevstreamsError | undefined];
  streamRequest: [request: IncomingStreamRequest];
  error: [error: DevstreamsError];
  retrying: [info: { error: DevstreamsError; delayMs: number; gateway: string }];
  refused: [error: DevstreamsError];
}

/** The device side of the hub: control socket, stream requests (see the module comment). */
export class DeviceClient extends EventEmitter<DeviceClientEvents> {
  private ws: WebSocket | undefined;
  private stopped = false;
  private readonly backoff: Backoff;
  private retryTimer: NodeJS.Timeout | undefined;
  private renewTimer: NodeJS.Timeout | undefined;
  private silenceTimer: NodeJS.Timeout | undefined;
  private firstConnect: { resolve(): void; reject(err: Error): void } | undefined;
  private readonly gateways: string[];
  private gatewayIndex = 0;
  /** Why this client cut off its control socket, told in the 'disconnected' and 'retrying' events. */
  private dropReason: DevstreamsError | undefined;
  /** The last socket ended badly (the hub broke the protocol, or replaced it): keep the backoff growing on the next connect. */
  private keepBackoff = false;
  /** @internal Resumable sessions this device holds, by session id. */
  readonly resumeRegistry = new ResumeRegistry<HeldDeviceSession>();

  private constructor(
    readonly cs: DeviceConnectionString,
    private readonly o: DeviceClientOptions,
  ) {
    super();
    this.backoff = new Backoff(o.backoff);
    this.gateways = dialHosts(cs);
  }

  /** The `host:port` this client dials now (rotates through GatewayHostName entries). */
  get gateway(): string {
    return this.gateways[this.gatewayIndex]!;
  }

  private nextGateway(): void {
    this.gatewayIndex = (this.gatewayIndex + 1) % this.gateways.length;
  }

  static fromConnectionString(text: string, options: DeviceClientOptions = {}): DeviceClient {
    return new DeviceClient(parseDeviceConnectionString(text), options);
  }

  get deviceId(): string {
    return this.cs.deviceId;
  }

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /**
   * Starts the control connection. Resolves once connected the first time; rejects if that
   * first attempt is refused for credentials (ERR_AUTH_*); other failures are retried.
   */
  open(): Promise<void> {
    if (this.stopped) return Promise.reject(new DevstreamsError('ERR_SESSION_CLOSED', 'client is closed'));
    return new Promise((resolve, reject) => {
      this.firstConnect = { resolve, reject };
      void this.connect();
    });
  }

  private token(): string {
    return createDeviceToken(this.cs.hostName, this.cs.deviceId, this.cs.sharedAccessKey, this.ttl());
  }

  private ttl(): number {
    return this.o.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const url = `${this.cs.transport}://${this.gateway}/devices/${encodeURIComponent(this.cs.deviceId)}/control`;
    let ws: WebSocket;
    try {
      const headers: Record<string, string> = { authorization: this.token() };
      if (this.o.publicKey) headers[DEVICE_KEY_HEADER] = this.o.publicKey.toString('base64');
      ws = await openWebSocket(url, headers, { ca: this.o.ca, maxMessageSize: CONTROL_MAX_MESSAGE }, (sock) => {
        // Listeners go on in the 'open' event itself, so no early message is lost.
        sock.on('message', (data: Buffer, isBinary: boolean) => this.onMessage(data, isBinary));
        sock.on('ping', () => this.heardHub());
        sock.on('error', () => {});
        sock.on('close', (code: number, reason: Buffer) => this.onClose(sock, code, reason.toString()));
        this.ws = sock;
        return sock;
      });
    } catch (err) {
      const e = err instanceof DevstreamsError ? err : new DevstreamsError('ERR_HUB_UNAVAILABLE', String(err));
      if (PERMANENT_REFUSAL_CODES.includes(e.code)) {
        this.stopped = true;
        if (this.firstConnect) {
          this.firstConnect.reject(e);
          this.firstConnect = undefined;
        } else {
          this.emit('refused', e);
        }
        return;
      }
      if (this.listenerCount('error') > 0) this.emit('error', e);
      const gateway = this.gateway;
      this.nextGateway();
      this.scheduleRetry(e, gateway);
      return;
    }
    if (this.stopped) {
      this.ws = undefined;
      ws.close(1000);
      return;
    }
    // A hub that misbehaves right after accepting us, or another proxy with our id replacing
    // each of our sockets, must not make us reconnect at the first delay forever.
    if (!this.keepBackoff) this.backoff.reset();
    this.keepBackoff = false;
    this.heardHub();
    this.scheduleRenew();
    this.firstConnect?.resolve();
    this.firstConnect = undefined;
    this.emit('connected');
  }

  private heardHub(): void {
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    const ws = this.ws;
    this.silenceTimer = setTimeout(() => ws?.terminate(), this.o.hubSilenceMs ?? DEFAULT_HUB_SILENCE_MS);
    this.silenceTimer.unref();
  }

  private scheduleRenew(): void {
    if (this.renewTimer) clearTimeout(this.renewTimer);
    this.renewTimer = setTimeout(
      () => {
        this.sendControl({ type: 'renew', token: this.token() });
        this.scheduleRenew();
      },
      this.ttl() * 1000 * TOKEN_RENEW_FRACTION,
    );
    this.renewTimer.unref();
  }

  private onMessage(data: Buffer, isBinary: boolean): void {
    if (this.dropReason) return; // closing: nothing more from this hub is acted on
    this.heardHub();
    let msg: HubToDevice | undefined;
    try {
      msg = isBinary ? undefined : parseHubMessage(data.toString('utf8'));
    } catch (err) {
      const e = err as DevstreamsError;
      this.drop(new DevstreamsError(e.code, `control socket closed: the hub broke the protocol (${e.message})`), CLOSE_CODES.protocol);
      return;
    }
    if (!msg) return; // newer hubs may send more; ignore what we do not know
    if (msg.type !== 'streamRequest') return;
    const req = new IncomingStreamRequest(this, msg);
    if (this.listenerCount('streamRequest') === 0) req.reject('device has no stream handler');
    else this.emit('streamRequest', req);
  }

  private onClose(ws: WebSocket, code: number, reason: string): void {
    if (this.ws !== ws) return;
    this.ws = undefined;
    if (this.renewTimer) clearTimeout(this.renewTimer);
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    let error =
      code === 1000
        ? undefined
        : new DevstreamsError('ERR_HUB_UNAVAILABLE', `control socket closed (${code}${reason ? ` ${reason}` : ''})`);
    if (this.dropReason) {
      error = this.dropReason;
      this.dropReason = undefined;
      this.keepBackoff = true;
    } else if (code === CLOSE_CODES.replaced) {
      // The hub keeps one control socket per device: a newer one replaced ours. When that is
      // another device proxy with the same id, both would replace each other forever.
      error = new DevstreamsError(
        'ERR_DEVICE_REPLACED',
        `control socket replaced by a newer one for device ${this.cs.deviceId} (${code}): another device proxy uses this id?`,
      );
      this.keepBackoff = true;
    }
    this.emit('disconnected', error);
    // A node going away (shutdown, crash, silence) sends us to the next one; a replaced or
    // revoked socket (4409, 4403) does not mean the node is bad, but moving on is harmless.
    // A revoked credential shows as a refusal on the next attempt, which then stops.
    const gateway = this.gateway;
    this.nextGateway();
    this.scheduleRetry(error ?? new DevstreamsError('ERR_HUB_UNAVAILABLE', 'control socket closed by the hub'), gateway);
  }

  private scheduleRetry(error: DevstreamsError, gateway: string): void {
    if (this.stopped || this.retryTimer) return;
    const delayMs = this.backoff.next();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.connect();
    }, delayMs);
    this.emit('retrying', { error, delayMs, gateway });
  }

  /** @internal sends a control message when connected; cuts the socket off when the hub does not read (CONTROL_SEND_LIMIT). */
  sendControl(m: object): void {
    const ws = this.ws;
    if (ws?.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > CONTROL_SEND_LIMIT) {
      this.drop(
        new DevstreamsError(
          'ERR_PROTOCOL_FLOOD',
          `control socket cut off: ${ws.bufferedAmount} bytes of answers queued unread by the hub (limit ${CONTROL_SEND_LIMIT})`,
        ),
      );
      return;
    }
    ws.send(JSON.stringify(m));
  }

  /** @internal bytes queued unsent on the control socket (0 when not connected). */
  get controlBufferedAmount(): number {
    return this.ws?.bufferedAmount ?? 0;
  }

  /**
   * Ends the control socket because the hub broke the protocol; onClose reconnects with backoff
   * and reports `error`. With a close code a close frame goes first; without, the socket is cut at
   * once (a close frame would wait behind what the hub does not read).
   */
  private drop(error: DevstreamsError, closeCode?: number): void {
    const ws = this.ws;
    if (!ws || this.dropReason) return;
    this.dropReason = error;
    if (closeCode === undefined) {
      ws.terminate();
      return;
    }
    ws.close(closeCode, error.code);
    setTimeout(() => ws.terminate(), 2000).unref();
  }

  /** @internal why `url` is not a stream URL this device dials, or undefined. */
  streamUrlProblem(url: string): string | undefined {
    return streamUrlProblem(url, this.cs.transport, [this.cs.hostName, ...this.gateways]);
  }

  /** @internal opens the device side of an accepted stream. */
  openDeviceSide(msg: StreamRequestMessage, zeroMask: boolean): Promise<WebSocketClientTransport> {
    return openStreamTransport(msg.url, msg.authorizationToken, {
      zeroMask,
      ca: this.o.ca,
      ...(this.cs.gatewayHostName !== undefined ? { gatewayHost: this.gateway, hostName: this.cs.hostName } : {}),
    });
  }

  /** Stops reconnecting and closes the control socket. Open streams are not touched. */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.renewTimer) clearTimeout(this.renewTimer);
    if (this.silenceTimer) clearTimeout(this.silenceTimer);
    this.retryTimer = undefined;
    this.firstConnect?.reject(new DevstreamsError('ERR_SESSION_CLOSED', 'client closed'));
    this.firstConnect = undefined;
    const ws = this.ws;
    this.ws = undefined;
    if (ws && ws.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        ws.once('close', () => resolve());
        ws.close(1000);
        setTimeout(() => {
          ws.terminate();
          resolve();
        }, 2000).unref();
      });
    }
  }
}
