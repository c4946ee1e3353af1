/**
 * A Transport whose peer never reads: everything sent is unread (as a socket's write buffer would
 * hold it), `send` returns false past `highWater`, and no drain ever comes. Tests inject what the
 * peer writes with `inject`.
 */
import { TransportBase } from '../../src/transport/base.js';
import { DEFAULT_MAX_MESSAGE_SIZE, type Transport } from '../../src/transport/transport.js';

export class StuckTransport extends TransportBase implements Transport {
  readonly maxMessageSize = DEFAULT_MAX_MESSAGE_SIZE;
  /** Bytes handed to `send` and never read by the peer. */
  unread = 0;
  closedWith: Error | undefined;

  constructor(private readonly highWater = 64 * 1024) {
    super();
  }

  get bufferedAmount(): number {
    return this.unread;
  }

  send(parts: readonly Buffer[]): boolean {
    if (this.isClosed) return false;
    for (const p of parts) this.unread += p.length;
    return this.acceptsMore(this.unread, this.highWater);
  }

  /** Delivers `message` as if the peer had sent it. */
  inject(message: Buffer): void {
    if (!this.isClosed) this.deliverMessage(message);
  }

  /** The peer reads everything sent so far (a test of a peer that does read). */
  readAll(): void {
    this.unread = 0;
    this.drainedTo(0, this.highWater);
  }

  close(error?: Error): void {
    if (this.isClosed) return;
    this.closedWith = error;
    this.unread = 0; // a torn-down socket frees its write buffer
    this.deliverClose(error);
  }
}
