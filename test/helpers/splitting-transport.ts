/** A Transport wrapper that hands messages up in pieces, as a socket's reads would cut them. */
import type { Transport, TransportHandlers } from '../../src/transport/transport.js';
import { splitBytesAt } from './chunks.js';
import { DelegatingTransport } from './delegating-transport.js';

/**
 * Wraps a transport so that every message larger than 1 byte reaches the handlers as pieces via
 * `onMessageParts`, cut where `cutsFor(message, index)` says; `mutate` may alter the joined bytes
 * first (to tamper).
 */
export class SplittingTransport extends DelegatingTransport {
  private index = 0;
  constructor(
    inner: Transport,
    private readonly cutsFor: (m: Buffer, index: number) => number[],
    private readonly mutate: (m: Buffer, index: number) => Buffer = (m) => m,
  ) {
    super(inner);
  }
  override attach(h: TransportHandlers): void {
    this.inner.attach({
      onMessage: (m) => {
        const i = this.index++;
        const msg = this.mutate(m, i);
        const pieces = splitBytesAt(msg, this.cutsFor(msg, i));
        if (pieces.length > 1 && h.onMessageParts) h.onMessageParts(pieces);
        else h.onMessage(msg);
      },
      onDrain: () => h.onDrain(),
      onClose: (e) => h.onClose(e),
    });
  }
}
