/**
 * A message transport over a `ws` WebSocket: one transport message is one binary WebSocket
 * message. Used by the SDKs for device streams (through the hub) and by tests.
 */
import WebSocket from 'ws';
import { DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_TRANSPORT_HIGH_WATER, type Transport } from './transport.js';
import { TransportBase } from './base.js';
import { DevstreamsError } from '../errors.js';

export interface WebSocketTransportOptions {
  maxMessageSize?: number;
  highWaterMark?: number;
  /**
   * Messages need no masking: this end is a server, or a client whose mask is all zeros (sealed
   * records). Multi-part messages then go out as one frame written part by part, without
   * joining the parts into a new buffer first.
   */
  unmasked?: boolean;
}

/** The parts of ws's sender this transport writes through (ws 8). */
interface WsSenderInternals {
  _socket?: import('node:net').Socket;
  _state?: number;
  _firstFragment?: boolean;
}

/** A WebSocket frame header for one final binary frame of `length` bytes (RFC 6455 5.2). */
function binaryFrameHeader(length: number, masked: boolean): Buffer {
  const maskBytes = masked ? 4 : 0;
  let header: Buffer;
  if (length < 126) {
    header = Buffer.alloc(2 + maskBytes);
    header[1] = length;
  } else if (length < 65536) {
    header = Buffer.alloc(4 + maskBytes);
    header[1] = 126;
    header.writeUInt16BE(length, 2);
  } else {
    header = Buffer.alloc(10 + maskBytes);
    header[1] = 127;
    header.writeUIntBE(length, 4, 6);
  }
  header[0] = 0x82; // FIN, binary
  if (masked) header[1]! |= 0x80; // masking key stays all zeros
  return header;
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
  private wantDrain = false;
  private readonly onSent = (): void => {
    if (this.wantDrain && this.ws.bufferedAmount <= this.highWaterMark) {
      this.wantDrain = false;
      this.deliverDrain();
    }
  };

  private readonly unmasked: boolean;

  constructor(private readonly ws: WebSocket, options: WebSocketTransportOptions = {}) {
    super();
    this.unmasked = options.unmasked === true;
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
    ws.on('error', (err) => this.deliverClose(new DevstreamsError('ERR_TRANSPORT_CLOSED', `websocket error: ${err.message}`, { cause: err })));
    ws.on('close', (code, reason) => {
      const normal = code === 1000 || code === 1005;
      this.deliverClose(normal ? undefined : new DevstreamsError('ERR_TRANSPORT_CLOSED', `websocket closed with ${code}${reason.length ? `: ${reason.toString()}` : ''}`));
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
    if (parts.length === 1 || !this.unmasked || !this.writeFrameParts(parts, size)) {
      this.ws.send(parts.length === 1 ? parts[0]! : Buffer.concat(parts, size), { binary: true, compress: false }, this.onSent);
    }
    return this.afterSend();
  }

  /**
   * Writes a multi-part message as one frame straight to the socket under ws's sender, saving
   * the copy that joining the parts would cost (a 64 KiB allocation per record, and the garbage
   * collections that allocation rate brings). Only when ws's sender is idle (no compression,
   * nothing queued, not inside a fragmented message), which is always the case for our sockets;
   * otherwise returns false and the caller sends the ordinary way.
   */
  private writeFrameParts(parts: readonly Buffer[], size: number): boolean {
    const sender = (this.ws as unknown as { _sender?: WsSenderInternals })._sender;
    const socket = sender?._socket;
    if (!sender || !socket || sender._state !== 0 || sender._firstFragment !== true || socket.destroyed) return false;
    // A client frame must carry the mask bit; with an all-zero key the payload is unchanged.
    const clientSide = (this.ws as unknown as { _isServer?: boolean })._isServer === false;
    socket.cork();
    socket.write(binaryFrameHeader(size, clientSide));
    const last = parts.length - 1;
    for (let i = 0; i < last; i++) socket.write(parts[i]!);
    socket.write(parts[last]!, this.onSent);
    socket.uncork();
    return true;
  }

  private afterSend(): boolean {
    if (this.ws.bufferedAmount > this.highWaterMark) {
      this.wantDrain = true;
      return false;
    }
    return true;
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
export function connectWebSocketTransport(url: string, options: WebSocket.ClientOptions & WebSocketTransportOptions = {}): Promise<WebSocketTransport> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { ...webSocketClientOptions(options.maxMessageSize), ...options });
    ws.once('open', () => {
      ws.off('error', reject);
      resolve(new WebSocketTransport(ws, options));
    });
    ws.once('error', reject);
  });
}
