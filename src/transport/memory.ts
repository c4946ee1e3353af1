/**
 * An in-memory transport pair for tests and micro-benchmarks. Delivery is asynchronous (one
 * macrotask hop) like a real socket, and each side's buffered bytes are bounded by a
 * high-water mark so backpressure behaves as it would on a wire.
 */
import { DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_TRANSPORT_HIGH_WATER, type Transport } from './transport.js';
import { TransportBase } from './base.js';
import { DevstreamsError } from '../errors.js';

/** Options of an in-memory transport pair. */
export interface MemoryTransportOptions {
  /** Bytes in flight one way before `send` returns false. */
  highWaterMark?: number;
  maxMessageSize?: number;
  /** One-way delay in ms, order preserved: a long link for flow-control tests. Default 0. */
  delayMs?: number;
}

class MemoryTransport extends TransportBase implements Transport {
  peer!: MemoryTransport;
  private queue: Buffer[] = [];
  private queued = 0;
  private scheduled = false;
  readonly maxMessageSize: number;
  private readonly highWaterMark: number;
  private readonly delayMs: number;

  constructor(options: MemoryTransportOptions) {
    super();
    this.highWaterMark = options.highWaterMark ?? DEFAULT_TRANSPORT_HIGH_WATER;
    this.delayMs = options.delayMs ?? 0;
    this.maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
  }

  get bufferedAmount(): number {
    return this.queued;
  }

  send(parts: readonly Buffer[]): boolean {
    if (this.isClosed) return false;
    const message = parts.length === 1 ? Buffer.from(parts[0]!) : Buffer.concat(parts);
    if (message.length > this.maxMessageSize) {
      this.close(
        new DevstreamsError('ERR_TRANSPORT_MESSAGE_TOO_LARGE', `message of ${message.length} bytes exceeds ${this.maxMessageSize}`),
      );
      return false;
    }
    this.queue.push(message);
    this.queued += message.length;
    if (!this.scheduled) {
      this.scheduled = true;
      // With a delay, everything sent in this turn leaves together after it: order is kept.
      if (this.delayMs > 0) setTimeout(() => this.flush(), this.delayMs);
      else setImmediate(() => this.flush());
    }
    return this.acceptsMore(this.queued, this.highWaterMark);
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    this.queued = 0;
    for (const message of batch) {
      if (this.peer.isClosed) break;
      this.peer.deliverMessage(message);
    }
    if (!this.isClosed) this.drainedTo(this.queued, this.highWaterMark);
  }

  /** Test hook: delivers a raw message to the peer as if it came off the wire. */
  injectToPeer(message: Buffer): void {
    this.peer.deliverMessage(message);
  }

  close(error?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    // Deliver what is already queued first, as a socket would flush before FIN.
    setImmediate(() => {
      this.flush();
      this.deliverClose(error);
      this.peer.deliverClose(error ? new DevstreamsError('ERR_TRANSPORT_CLOSED', 'peer transport failed', { cause: error }) : undefined);
    });
  }
}

/** Two connected in-memory transports. */
export function createMemoryTransportPair(options: MemoryTransportOptions = {}): [Transport, Transport] {
  const a = new MemoryTransport(options);
  const b = new MemoryTransport(options);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
