/** A Transport that passes everything to another; tests subclass it to watch or alter one part. */
import type { Transport, TransportHandlers } from '../../src/transport/transport.js';

export class DelegatingTransport implements Transport {
  constructor(protected readonly inner: Transport) {}
  send(parts: readonly Buffer[]): boolean {
    return this.inner.send(parts);
  }
  attach(handlers: TransportHandlers): void {
    this.inner.attach(handlers);
  }
  close(error?: Error): void {
    this.inner.close(error);
  }
  get bufferedAmount(): number {
    return this.inner.bufferedAmount;
  }
  get maxMessageSize(): number {
    return this.inner.maxMessageSize;
  }
  get closed(): boolean {
    return this.inner.closed;
  }
}
