/**
 * A message transport over a TCP socket: each message is a 4-byte big-endian length followed by
 * its bytes. Used by the bench (to measure the mux without WebSocket costs) and by tests.
 */
import net from 'node:net';
import { DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_TRANSPORT_HIGH_WATER, type Transport } from './transport.js';
import { TransportBase } from './base.js';
import { ByteQueue } from '../util/byte-queue.js';
import { DevstreamsError } from '../errors.js';

/** Options of a length-prefixed TCP transport. */
export interface TcpTransportOptions {
  maxMessageSize?: number;
  highWaterMark?: number;
}

/** Wraps a connected socket. */
export class TcpTransport extends TransportBase implements Transport {
  readonly maxMessageSize: number;
  private readonly highWaterMark: number;
  private readonly input = new ByteQueue();

  constructor(
    private readonly socket: net.Socket,
    options: TcpTransportOptions = {},
  ) {
    super();
    this.maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.highWaterMark = options.highWaterMark ?? DEFAULT_TRANSPORT_HIGH_WATER;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.drainedTo(socket.writableLength, this.highWaterMark));
    socket.on('error', (err) => this.fail(new DevstreamsError('ERR_TRANSPORT_CLOSED', `socket error: ${err.message}`, { cause: err })));
    socket.on('close', () => this.deliverClose());
  }

  get bufferedAmount(): number {
    return this.socket.writableLength;
  }

  send(parts: readonly Buffer[]): boolean {
    if (this.isClosed || this.socket.destroyed) return false;
    let size = 0;
    for (const part of parts) size += part.length;
    if (size > this.maxMessageSize) {
      this.fail(new DevstreamsError('ERR_TRANSPORT_MESSAGE_TOO_LARGE', `message of ${size} bytes exceeds ${this.maxMessageSize}`));
      return false;
    }
    const prefix = Buffer.allocUnsafe(4);
    prefix.writeUInt32BE(size, 0);
    this.socket.cork();
    this.socket.write(prefix);
    for (const part of parts) this.socket.write(part);
    this.socket.uncork();
    return this.acceptsMore(this.socket.writableLength, this.highWaterMark);
  }

  close(error?: Error): void {
    if (this.isClosed) return;
    if (error) {
      this.fail(error);
      return;
    }
    this.isClosed = true;
    this.socket.end();
  }

  private fail(error: Error): void {
    this.socket.destroy();
    this.deliverClose(error);
  }

  private onData(chunk: Buffer): void {
    this.input.push(chunk);
    while (this.input.length >= 4) {
      const size = this.input.peekUInt32BE(0);
      if (size > this.maxMessageSize) {
        this.fail(
          new DevstreamsError('ERR_TRANSPORT_MESSAGE_TOO_LARGE', `peer sent a message of ${size} bytes; limit ${this.maxMessageSize}`),
        );
        return;
      }
      if (this.input.length < 4 + size) return;
      this.input.skip(4);
      if (this.input.isContiguous(size)) this.deliverMessage(this.input.read(size));
      else this.deliverMessageParts(this.input.readParts(size));
      if (this.isClosed && this.socket.destroyed) return;
    }
  }
}

/** Connects to `port` on `host` and resolves with a transport once connected. */
export function connectTcpTransport(port: number, host = '127.0.0.1', options: TcpTransportOptions = {}): Promise<TcpTransport> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(new TcpTransport(socket, options));
    });
    socket.once('error', reject);
  });
}
