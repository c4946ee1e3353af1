/**
 * The hub's router: which endpoint a request or upgrade goes to, the checks every route shares
 * (shutdown, an address past its refused credentials), and how a failure is answered and
 * counted. The wiring (listener, stores, control plane, pairer) lives in server.ts.
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { WebSocket, WebSocketServer } from 'ws';
import { DevstreamsError } from '../errors.js';
import { isValidDeviceId } from '../auth/connection-string.js';
import { DEVICE_KEY_HEADER, isDeviceKey } from '../hub-api/control-protocol.js';
import type { StreamPairer } from './streams.js';
import type { HubContext } from './context.js';
import type { Admission } from './admission.js';
import { authenticateDevice, bearerToken, markAddressLimited } from './authenticate.js';
import { refuseUpgrade, sendError, toHubError } from './http-errors.js';
import { firstSubprotocol, handshakeKey, handshakeResponse } from '../transport/ws-handshake.js';
import { segment, sendJson } from './http-util.js';
import { handleRegistryApi, only, type RegistryApiContext } from './registry-api.js';
import { handleStreamRequest, type StreamRequestContext } from './stream-request.js';

/**
 * What the routes need from the hub that wired them: the shared facts (HubContext), what the
 * stream-request and registry routes add of their own, and the router's own parts.
 */
export interface HubRouteContext extends HubContext, StreamRequestContext, RegistryApiContext {
  readonly admission: Admission;
  readonly controlWss: WebSocketServer;
  readonly pairer: StreamPairer;
  /** Serve `GET /metrics` here (false when a separate listener serves them). */
  readonly metricsOnMainListener: boolean;
  isClosed(): boolean;
}

/** Routes requests and upgrades for one hub. */
export class HubRoutes {
  constructor(private readonly hub: HubRouteContext) {}

  /** Normalises an error and counts (and logs) refused credentials. */
  private count(err: unknown, req: http.IncomingMessage): DevstreamsError {
    const e = toHubError(err);
    if (e.code.startsWith('ERR_AUTH')) {
      // A fixed label set: arbitrary paths must not grow the metric without bound.
      const first = (req.url ?? '').split('/')[1] ?? '';
      const endpoint = first === 'devices' || first === 'twins' || first === 'streams' ? first : 'other';
      this.hub.metrics.authFailure(endpoint, e.code);
      this.hub.admission.refusedCredentials(req.socket.remoteAddress, {
        code: e.code,
        method: req.method,
        path: (req.url ?? '').split('?')[0]!.slice(0, 200),
        remote: req.socket.remoteAddress,
      });
    }
    return e;
  }

  /** Answers a failed request with its JSON error. */
  fail(res: http.ServerResponse, err: unknown, req: http.IncomingMessage): void {
    const e = this.count(err, req);
    if (e.code === 'ERR_INTERNAL') this.hub.log.error({ err, url: req.url }, 'request failed');
    sendError(res, e);
  }

  /** Refuses a failed upgrade with its JSON error. */
  refuse(socket: Duplex, err: unknown, req: http.IncomingMessage): void {
    const e = this.count(err, req);
    if (e.code === 'ERR_INTERNAL') this.hub.log.error({ err, url: req.url }, 'upgrade failed');
    refuseUpgrade(socket, e);
  }

  /**
   * Past its refused credentials, an address's tokens are checked against the local registry
   * only (authenticate.ts): a valid one goes on, one that fails gets 429 without the re-read a
   * refusal otherwise costs. Never a 429 up front: everyone behind a shared address (a NAT, a
   * reverse proxy) would be locked out by whoever forges tokens from it.
   */
  private checkAddress(req: http.IncomingMessage): void {
    const address = req.socket.remoteAddress;
    if (!this.hub.admission.blocked(address)) return;
    markAddressLimited(req, () => {
      this.hub.admission.addressLimited(address);
      return new DevstreamsError(
        'ERR_RATE_LIMITED',
        `too many refused credentials from this address; retry in ${Math.ceil(this.hub.config.refusalWindowMs / 1000)} s`,
      );
    });
  }

  /** Routes a WebSocket upgrade: device control sockets and the streaming endpoint. */
  async handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    if (this.hub.isClosed()) throw new DevstreamsError('ERR_HUB_SHUTDOWN', 'hub is shutting down');
    this.checkAddress(req);
    const path = (req.url ?? '/').split('?')[0]!;
    const parts = path.split('/');
    if (req.method !== 'GET') throw new DevstreamsError('ERR_METHOD_NOT_ALLOWED', 'WebSocket upgrades use GET');
    if (parts.length === 4 && parts[1] === 'devices' && parts[3] === 'control') {
      const deviceId = segment(parts[2]!);
      if (!isValidDeviceId(deviceId)) throw new DevstreamsError('ERR_BAD_REQUEST', 'invalid device id');
      const who = await authenticateDevice(req, this.hub.registry, this.hub.hostName(), deviceId, this.hub.config.clockSkewSeconds);
      this.hub.controlWss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
        if (this.hub.isClosed()) {
          ws.close(1001, 'ERR_HUB_SHUTDOWN');
          return;
        }
        const announced = req.headers[DEVICE_KEY_HEADER];
        this.hub.control.attach(deviceId, ws, who.expiry, who.key, isDeviceKey(announced) ? announced : undefined);
        this.hub.log.info({ deviceId }, 'device connected');
      });
      return;
    }
    if (parts.length === 3 && parts[1] === 'streams') {
      const streamId = segment(parts[2]!);
      const token = bearerToken(req);
      // Headers first: a malformed upgrade must not use up the single-use token.
      const key = handshakeKey(req);
      const claim = await this.hub.router.claim(streamId, token, Date.now());
      if (!claim.ok) {
        if (claim.why === 'reused') throw new DevstreamsError('ERR_AUTH_TOKEN_REUSED', 'stream token was already used');
        if (claim.why === 'expired') throw new DevstreamsError('ERR_AUTH_EXPIRED', 'stream token expired');
        throw new DevstreamsError('ERR_AUTH_INVALID', 'stream token is not valid for this stream');
      }
      if (this.hub.isClosed()) throw new DevstreamsError('ERR_HUB_SHUTDOWN', 'hub is shutting down');
      if (socket.destroyed) return; // the client gave up while the claim was checked
      // The hub answers the handshake itself and splices frames (splice.ts), without ws.
      socket.write(handshakeResponse(key, firstSubprotocol(req)));
      this.hub.pairer.add(streamId, claim.side, socket as Socket, head);
      return;
    }
    throw new DevstreamsError('ERR_NOT_FOUND', 'no WebSocket endpoint at this path');
  }

  /** Routes a plain HTTP request: health, metrics, stream requests, the registry API. */
  async handleRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (this.hub.isClosed()) throw new DevstreamsError('ERR_HUB_SHUTDOWN', 'hub is shutting down');
    const path = (req.url ?? '/').split('?')[0]!;
    const parts = path.split('/');
    const method = req.method ?? 'GET';
    if (path === '/healthz') {
      only(method, path, 'GET');
      sendJson(res, 200, {
        status: 'ok',
        connectedDevices: this.hub.control.connectedCount,
        activeStreams: this.hub.pairer.activeCount,
        waitingStreams: this.hub.pairer.waitingCount,
      });
      return;
    }
    if (path === '/metrics' && this.hub.metricsOnMainListener) {
      only(method, path, 'GET');
      const text = await this.hub.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': this.hub.metrics.registry.contentType });
      res.end(text);
      return;
    }
    this.checkAddress(req); // health and metrics above carry no credentials
    if (parts.length === 5 && parts[1] === 'twins' && parts[3] === 'streams') {
      only(method, path, 'POST');
      await handleStreamRequest(this.hub, req, res, segment(parts[2]!), segment(parts[4]!));
      return;
    }
    if (await handleRegistryApi(this.hub, req, res, path, parts, method)) return;
    if (parts.length === 4 && parts[1] === 'devices' && parts[3] === 'control') {
      throw new DevstreamsError('ERR_BAD_REQUEST', 'the control endpoint needs a WebSocket upgrade');
    }
    if (parts.length === 3 && parts[1] === 'streams') {
      throw new DevstreamsError('ERR_BAD_REQUEST', 'the streaming endpoint needs a WebSocket upgrade');
    }
    throw new DevstreamsError('ERR_NOT_FOUND', `no endpoint at ${path.slice(0, 80)}`);
  }
}
