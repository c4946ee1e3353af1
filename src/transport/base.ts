/**
 * Shared bookkeeping for transports: holds messages that arrive before `attach`, makes close
 * reach the handlers exactly once, and keeps the one backpressure rule every layer follows:
 *
 *   a `send` that returns false makes its sender wait; the transport calls `onDrain` exactly
 *   once when the reason is gone, and only then.
 *
 * A transport states its reason with `admit` (or `acceptsMore` for a byte level) and its end
 * with `wakeSender` (or `drainedTo`). A layer that sends into a transport keeps the other half
 * with a `DrainGate`. Concrete transports only move bytes.
 */
import type { TransportHandlers } from './transport.js';

/** The base of every transport (see the module comment). */
export abstract class TransportBase {
  private handlers: TransportHandlers | undefined;
  private held: Buffer[] = [];
  private closeDelivered = false;
  private pendingClose: { error?: Error } | undefined;
  /** A send returned false and its sender waits for onDrain. */
  private senderWaits = false;
  protected isClosed = false;

  get closed(): boolean {
    return this.isClosed;
  }

  attach(handlers: TransportHandlers): void {
    if (this.handlers) throw new Error('transport handlers are already attached');
    this.handlers = handlers;
    const held = this.held;
    this.held = [];
    for (const message of held) handlers.onMessage(message);
    if (this.pendingClose) this.deliverClose(this.pendingClose.error);
  }

  /** True when the attached handler copies what it keeps (`TransportHandlers.borrowsReads`). */
  protected get handlerBorrowsReads(): boolean {
    return this.handlers?.borrowsReads === true;
  }

  protected deliverMessage(message: Buffer): void {
    if (this.closeDelivered) return;
    if (this.handlers) this.handlers.onMessage(message);
    else this.held.push(message);
  }

  /** Delivers a message that arrived in pieces, joining them only for handlers that need it. */
  protected deliverMessageParts(parts: Buffer[]): void {
    if (this.closeDelivered) return;
    if (this.handlers?.onMessageParts) this.handlers.onMessageParts(parts);
    else this.deliverMessage(Buffer.concat(parts));
  }

  private deliverDrain(): void {
    if (!this.closeDelivered) this.handlers?.onDrain();
  }

  /** The answer of a `send`: passes `ok` through; false makes the sender wait for `onDrain`. */
  protected admit(ok: boolean): boolean {
    if (!ok) this.senderWaits = true;
    return ok;
  }

  /** Owes the sender an `onDrain` even without a refused send (e.g. the path below changed). */
  protected holdSender(): void {
    this.senderWaits = true;
  }

  /** True while a sender waits for `onDrain`. */
  protected get senderWaiting(): boolean {
    return this.senderWaits;
  }

  /** The reason to wait may be gone: wakes a waiting sender (once) when `ready`. */
  protected wakeSender(ready = true): void {
    if (!this.senderWaits || !ready) return;
    this.senderWaits = false;
    this.deliverDrain();
  }

  /** After a send: `admit` by a byte level, true while `buffered` is within `highWater`. */
  protected acceptsMore(buffered: number, highWater: number): boolean {
    return this.admit(buffered <= highWater);
  }

  /** Buffered bytes went down to `buffered`: wakes a waiting sender once it is within `highWater`. */
  protected drainedTo(buffered: number, highWater: number): void {
    this.wakeSender(buffered <= highWater);
  }

  protected deliverClose(error?: Error): void {
    this.isClosed = true;
    if (this.closeDelivered) return;
    if (!this.handlers) {
      this.pendingClose ??= error ? { error } : {};
      return;
    }
    this.closeDelivered = true;
    this.handlers.onClose(error);
  }
}

/**
 * The sender's half of the rule, for a layer that sends into a `Transport`: after a send that
 * returned false, send nothing more until that transport's `onDrain`.
 */
export class DrainGate {
  private blocked = false;

  /** True while sends may go. */
  get open(): boolean {
    return !this.blocked;
  }

  /** Records the answer of a send and passes it through. */
  sent(ok: boolean): boolean {
    if (!ok) this.blocked = true;
    return ok;
  }

  /** The transport's onDrain came, or the transport below was replaced: sends may go again. */
  drained(): void {
    this.blocked = false;
  }
}
