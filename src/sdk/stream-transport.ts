/**
 * Opens one side of a device stream: a WebSocket to the hub's streaming endpoint with the
 * side's single-use bearer token, as a `WebSocketClientTransport`. A refused upgrade becomes a
 * typed error carrying the hub's JSON code. (`openWebSocket`, on `ws`, serves the device's
 * long-lived control socket.)
 */
import WebSocket from 'ws';
import { DevstreamsError } from '../errors.js';
import { webSocketClientOptions } from '../transport/websocket.js';
import { connectWebSocket, type WebSocketClientTransport } from '../transport/index.js';
import { DEFAULT_OWNED_READ_BYTES } from '../util/shared-read-buffer.js';
import { DEFAULT_TURN_READ_BYTES } from '../util/read-turn.js';
import { DEFAULT_MAX_MESSAGE_SIZE } from '../transport/transport.js';
import { errorFromBody, parseJsonBody } from './http.js';
import { describeHubConnectError } from './connect-errors.js';

/** How long opening a stream socket may take, ms. */
export const DEFAULT_STREAM_CONNECT_TIMEOUT_MS = 15_000;

/** How to dial a stream URL the hub handed out. */
export interface OpenStreamOptions {
  maxMessageSize?: number;
  highWaterMark?: number;
  ca?: string | Buffer;
  connectTimeoutMs?: number;
  /** Dial this `host:port` instead of the URL's host (GatewayHostName)... */
  gatewayHost?: string;
  /**
   * ...but only when the URL's host is this name (the connection string's HostName). A URL
   * naming another host is a fleet node's own streaming address: both sides must meet there.
   */
  hostName?: string;
  /** Every message is a sealed record (ciphertext): send with an all-zero mask (`WebSocketClientTransportOptions.zeroMask` says why). */
  zeroMask?: boolean;
  /**
   * Sealed streams only (`zeroMask`): bytes the stream socket delivers in one readiness before it
   * reads again at the end of the event-loop turn (`WebSocketClientTransportOptions.turnReadBytes`).
   * Default `DEFAULT_TURN_READ_BYTES`; 0 no bound.
   */
  turnReadBytes?: number;
}

/**
 * Opens a WebSocket with devstreams' options; refused upgrades reject with the hub's code.
 * `onOpen` runs synchronously in the 'open' event so that it can attach message listeners
 * before anything else runs: a message may arrive in the same read as the 101 response, and
 * would be emitted (and lost) before a promise continuation could attach a listener.
 */
export function openWebSocket<T>(
  url: string,
  headers: Record<string, string>,
  o: { ca?: string | Buffer; connectTimeoutMs?: number; maxMessageSize?: number },
  onOpen: (ws: WebSocket) => T,
): Promise<T> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, {
      ...webSocketClientOptions(o.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE),
      headers,
      handshakeTimeout: o.connectTimeoutMs ?? DEFAULT_STREAM_CONNECT_TIMEOUT_MS,
      ...(o.ca !== undefined ? { ca: o.ca } : {}),
    });
    let settled = false;
    const fail = (err: DevstreamsError): void => {
      if (settled) return;
      settled = true;
      ws.terminate();
      reject(err);
    };
    ws.once('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        if (chunks.length < 64) chunks.push(c);
      });
      res.on('end', () => fail(errorFromBody(res.statusCode ?? 0, parseJsonBody(Buffer.concat(chunks)))));
      res.on('error', () => fail(new DevstreamsError('ERR_HUB_UNAVAILABLE', `hub refused the WebSocket with HTTP ${res.statusCode}`)));
    });
    ws.once('error', (err) =>
      fail(new DevstreamsError('ERR_HUB_UNAVAILABLE', describeHubConnectError(new URL(url).host, err), { cause: err })),
    );
    ws.once('open', () => {
      if (settled) return;
      settled = true;
      ws.removeAllListeners('error');
      resolve(onOpen(ws));
    });
  });
}

/** Connects to a stream URL with its bearer token and returns the transport for that side. */
export async function openStreamTransport(url: string, token: string, o: OpenStreamOptions = {}): Promise<WebSocketClientTransport> {
  let target = url;
  if (o.gatewayHost !== undefined) {
    const u = new URL(url);
    if (o.hostName === undefined || sameHost(u.host, o.hostName, u.protocol)) {
      u.host = o.gatewayHost;
      target = u.toString();
    }
  }
  let refusal: DevstreamsError | undefined;
  try {
    return await connectWebSocket(target, {
      headers: { authorization: `Bearer ${token}` },
      timeoutMs: o.connectTimeoutMs ?? DEFAULT_STREAM_CONNECT_TIMEOUT_MS,
      zeroMask: o.zeroMask === true,
      // Sealed: the record layer opens each record as it is delivered, so reads can go to the shared buffer.
      ownedReadBytes: o.zeroMask === true ? DEFAULT_OWNED_READ_BYTES : undefined,
      turnReadBytes: o.zeroMask === true ? (o.turnReadBytes ?? DEFAULT_TURN_READ_BYTES) : undefined,
      ca: o.ca,
      maxMessageSize: o.maxMessageSize,
      highWaterMark: o.highWaterMark,
      refused: (status, body) => (refusal = errorFromBody(status, parseJsonBody(body))),
    });
  } catch (err) {
    if (err === refusal || (err instanceof DevstreamsError && err.code === 'ERR_CONFIG')) throw err;
    const cause = (err as { cause?: unknown }).cause ?? err;
    throw new DevstreamsError(
      'ERR_HUB_UNAVAILABLE',
      (cause as { code?: unknown }).code !== undefined ? describeHubConnectError(new URL(target).host, cause) : (err as Error).message,
      { cause: err },
    );
  }
}

/** True when URL host `a` names `b` (case-insensitive; a default port may be left out). */
/**
 * Why a device must not dial `url`, or undefined when it may: a stream URL must use the scheme
 * of the device's connection string (`transport`) and name its hub (`hosts`: HostName and the
 * gateways it lists). A hostile hub could otherwise make devices open connections, bearing a
 * token, to any host and port inside their own networks, or downgrade wss to ws.
 */
export function streamUrlProblem(url: string, transport: 'ws' | 'wss', hosts: readonly string[]): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'stream URL is not a URL';
  }
  if (u.protocol !== `${transport}:`) return `stream URL scheme ${u.protocol.slice(0, 8)} is not this device's ${transport}`;
  if (u.username !== '' || u.password !== '') return 'stream URL carries credentials';
  if (!hosts.some((h) => sameHost(u.host, h, u.protocol)))
    return `stream URL host ${u.host.slice(0, 100)} is not this device's hub (${hosts.join(', ')})`;
  return undefined;
}

function sameHost(a: string, b: string, protocol: string): boolean {
  const norm = (h: string): string => {
    const x = h.toLowerCase();
    const def = protocol === 'wss:' || protocol === 'https:' ? ':443' : ':80';
    return x.endsWith(def) ? x.slice(0, -def.length) : x;
  };
  return norm(a) === norm(b);
}
