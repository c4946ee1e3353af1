/**
 * A message transport over a `ws` WebSocket: one transport message is one binary WebSocket
 * message. Used by tests and the bench on either end of a `ws` connection (the SDKs' stream
 * sockets use `WebSocketClientTransport`).
 */
import WebSocket from 'ws';
import { DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_TRANSPORT_HIGH_WATER, type Transport } from './transport.js';
import { TransportBase } from './base.js';
import { DevstreamsError } from '../errors.js';

/** Options of a transport over a `ws` WebSocket. */
export interface WebSocketTransportOptions {
  maxMessageSize?: number;
  highWaterMark?: number;
}

/**
 * Options for `new WebSocket(url, options)` that every devstreams client should use:
 * compression off (sealed records do not compress, and the ws client offers it by default)
 * and `maxPayload` bounded to one record.
 */
export function webSocketClientOptions(maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE): WebSocket.ClientOptions {
  return { perMessageDeflate: false, maxPayload: maxMessageSize, skipUTF8Validation: true };
}

/** Wraps an open (or opening) WebSocket. */
export class WebSocketTransport extends TransportBase implements Transport {
  readonly maxMessageSize: number;
  private readonly highWaterMark: number;
  private readonly onSent = (): void => this.drainedTo(this.ws.bufferedAmount, this.highWaterMark);

  constructor(
    private readonly ws: WebSocket,
    options: WebSocketTransportOptions = {},
  ) {
    super();
    this.maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.highWaterMark = options.highWaterMark ?? DEFAULT_TRANSPORT_HIGH_WATER;
    ws.binaryType = 'nodebuffer';
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (!isBinary) {
        this.close(new DevstreamsError('ERR_PROTOCOL_FRAME', 'peer sent a text WebSocket message; devstreams speaks binary only'));
        return;
      }
      this.deliverMessage(data);
    });
    ws.on('error', (err) =>
      this.deliverClose(new DevstreamsError('ERR_TRANSPORT_CLOSED', `websocket error: ${err.message}`, { cause: err })),
    );
    ws.on('close', (code, reason) => {
      const normal = code === 1000 || code === 1005;
      this.deliverClose(
        normal
          ? undefined
          : new DevstreamsError('ERR_TRANSPORT_CLOSED', `websocket closed with ${code}${reason.length ? `: ${reason.toString()}` : ''}`),
      );
    });
  }

  /** The wrapped socket, for callers that need its close code or remote address. */
  get socket(): WebSocket {
    return this.ws;
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  send(parts: readonly Buffer[]): boolean {
    if (this.isClosed || this.ws.readyState !== WebSocket.OPEN) return false;
    let size = 0;
    for (const part of parts) size += part.length;
    if (size > this.maxMessageSize) {
      this.close(new DevstreamsError('ERR_TRANSPORT_MESSAGE_TOO_LARGE', `message of ${size} bytes exceeds ${this.maxMessageSize}`));
      return false;
    }
    this.ws.send(parts.length === 1 ? parts[0]! : Buffer.concat(parts, size), { binary: true, compress: false }, this.onSent);
    return this.acceptsMore(this.ws.bufferedAmount, this.highWaterMark);
  }

  close(error?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    if (error) {
      const reason = error instanceof DevstreamsError ? error.code : 'error';
      this.ws.close(1011, reason);
      this.deliverClose(error);
    } else {
      this.ws.close(1000);
    }
  }
}

/** Opens a WebSocket client with devstreams' options and resolves once it is open. */
export function connectWebSocketTransport(
  url: string,
  options: WebSocket.ClientOptions & WebSocketTransportOptions = {},
): Promise<WebSocketTransport> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { ...webSocketClientOptions(options.maxMessageSize), ...options });
    ws.once('open', () => {
      ws.off('error', reject);
      resolve(new WebSocketTransport(ws, options));
    });
    ws.once('error', reject);
  });
}
