/**
 * Dials a WebSocket server and does the client's opening handshake on a raw socket (no
 * `http.ClientRequest`, no `ws`), then hands the socket to a `WebSocketClientTransport`.
 */
import net from 'node:net';
import tls from 'node:tls';
import { DevstreamsError } from '../errors.js';
import { checkUpgradeAnswer, clientHandshakeRequest, parseResponseHead } from './ws-handshake.js';
import { sharedReadBuffer } from '../util/shared-read-buffer.js';
import { turnReadBound } from '../util/read-turn.js';
import { WebSocketClientTransport, type OwnedReads, type WebSocketClientTransportOptions } from './ws-client-transport.js';

/** Default limit for dialling and the handshake together, ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
/** Longest response head read before giving up on a server. */
const MAX_HEAD_BYTES = 16 * 1024;
/** Longest body of a refusal kept for the caller. */
const MAX_REFUSAL_BODY = 64 * 1024;

/** How connectWebSocket dials and what it sends. */
export interface WebSocketConnectOptions extends WebSocketClientTransportOptions {
  /** Extra request headers (e.g. `authorization`). */
  headers?: Readonly<Record<string, string>>;
  /** Trusted CA certificates (PEM) for `wss:`; replaces the default set, as in `tls.connect`. */
  ca?: string | Buffer;
  /** Limit for dialling, TLS and the handshake together, ms. */
  timeoutMs?: number;
  /**
   * Makes the error for an answer other than 101 from its status and body (a server's typed
   * refusal). Without it the error is `ERR_TRANSPORT_HANDSHAKE` with the status.
   */
  refused?: (status: number, body: Buffer) => Error;
}

/** Opens a WebSocket to `url` (`ws:` or `wss:`; `http:`/`https:` are taken as the same). */
export function connectWebSocket(url: string, o: WebSocketConnectOptions = {}): Promise<WebSocketClientTransport> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return Promise.reject(new DevstreamsError('ERR_CONFIG', `not a URL: ${JSON.stringify(url.slice(0, 100))}`));
  }
  const secure = u.protocol === 'wss:' || u.protocol === 'https:';
  if (!secure && u.protocol !== 'ws:' && u.protocol !== 'http:')
    return Promise.reject(new DevstreamsError('ERR_CONFIG', `unsupported WebSocket URL scheme ${u.protocol}`));
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  const port = u.port !== '' ? Number(u.port) : secure ? 443 : 80;
  const where = `${u.protocol}//${u.host}${u.pathname}`;
  let handshake: { key: string; request: string };
  try {
    handshake = clientHandshakeRequest(`${u.pathname}${u.search}`, u.host, o.headers ?? {});
  } catch (err) {
    return Promise.reject(err);
  }

  return new Promise((resolve, reject) => {
    // Reads into a shared buffer: the handshake's reader below copies what it keeps, the transport then takes over.
    const reads: OwnedReads | undefined =
      !secure && o.ownedReadBytes ? { buffer: sharedReadBuffer(o.ownedReadBytes), sink: (view) => onData(Buffer.from(view)) } : undefined;
    const socket: net.Socket = secure
      ? tls.connect({ host, port, ...(net.isIP(host) === 0 ? { servername: host } : {}), ...(o.ca !== undefined ? { ca: o.ca } : {}) })
      : reads
        ? net.connect({
            host,
            port,
            onread: {
              buffer: reads.buffer,
              callback: (n): boolean => {
                reads.sink(reads.buffer.subarray(0, n));
                return more === undefined || more(n, reads.buffer.length);
              },
            },
          })
        : net.connect({ host, port });
    const more: ((n: number, capacity: number) => boolean) | undefined =
      reads && o.turnReadBytes ? turnReadBound(socket, o.turnReadBytes) : undefined;
    // The client's side of the opening handshake, as a state machine: reading the answer's head,
    // then either done (101) or reading a refusal's body (any other status), then done.
    let state: DialState = 'reading-head';
    let head: Buffer = Buffer.alloc(0);
    let refusal: Refusal | undefined;
    const timeoutMs = o.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    // A refusal whose body never ends (no length, connection kept open) still reports its status.
    const timer = setTimeout(
      () =>
        state === 'reading-refusal'
          ? finishRefusal()
          : fail(new DevstreamsError('ERR_TRANSPORT_CLOSED', `cannot open ${where}: no WebSocket handshake within ${timeoutMs} ms`)),
      timeoutMs,
    );
    const done = (): void => {
      state = 'done';
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
    };
    const fail = (err: Error): void => {
      if (state === 'done') return;
      done();
      socket.destroy();
      reject(err);
    };
    const onError = (err: Error): void =>
      state === 'reading-refusal'
        ? finishRefusal()
        : fail(new DevstreamsError('ERR_TRANSPORT_CLOSED', `cannot open ${where}: ${err.message}`, { cause: err }));
    // A refusal without a declared length ends with the connection.
    const onClose = (): void =>
      state === 'reading-refusal'
        ? finishRefusal()
        : fail(new DevstreamsError('ERR_TRANSPORT_CLOSED', `cannot open ${where}: the server closed the connection during the handshake`));
    const finishRefusal = (): void => {
      if (state !== 'reading-refusal') return;
      const r = refusal!;
      const body = Buffer.concat(r.body).subarray(0, MAX_REFUSAL_BODY);
      fail(
        o.refused
          ? o.refused(r.status, body)
          : new DevstreamsError('ERR_TRANSPORT_HANDSHAKE', `${where} refused the WebSocket upgrade with HTTP ${r.status}`),
      );
    };
    const readRefusal = (chunk: Buffer): void => {
      const r = refusal!;
      r.body.push(chunk);
      r.bytes += chunk.length;
      if (r.bytes >= (r.length ?? MAX_REFUSAL_BODY)) finishRefusal();
    };
    const readHead = (chunk: Buffer): void => {
      head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > MAX_HEAD_BYTES)
          fail(new DevstreamsError('ERR_TRANSPORT_HANDSHAKE', `${where} sent a response head over ${MAX_HEAD_BYTES} bytes`));
        return;
      }
      const answer = parseResponseHead(head.subarray(0, end).toString('latin1'));
      const rest = head.subarray(end + 4);
      if (answer.status !== 101) {
        const declared = Number(answer.headers.get('content-length') ?? NaN);
        const bodiless = answer.status < 200 || answer.status === 204 || answer.status === 304;
        const length = bodiless ? 0 : Number.isSafeInteger(declared) && declared >= 0 ? Math.min(declared, MAX_REFUSAL_BODY) : undefined;
        refusal = { status: answer.status, length, body: [], bytes: 0 };
        state = 'reading-refusal';
        readRefusal(rest);
        return;
      }
      checkUpgradeAnswer(answer, handshake.key);
      done();
      resolve(new WebSocketClientTransport(socket, url, rest, o, reads));
    };
    const onData = (chunk: Buffer): void => {
      try {
        if (state === 'reading-head') readHead(chunk);
        else if (state === 'reading-refusal') readRefusal(chunk);
      } catch (err) {
        fail(err as Error);
      }
    };
    socket.once(secure ? 'secureConnect' : 'connect', () => socket.write(handshake.request));
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}

/** Where the client's opening handshake is. */
type DialState = 'reading-head' | 'reading-refusal' | 'done';

/** A non-101 answer whose body is being read: `length` undefined means "until the connection ends". */
interface Refusal {
  status: number;
  length: number | undefined;
  body: Buffer[];
  bytes: number;
}
