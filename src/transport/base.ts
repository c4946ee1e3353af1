/**
 * Shared bookkeeping for transports: holds messages that arrive before `attach`, and makes
 * close reach the handlers exactly once. Concrete transports only move bytes.
 */
import type { TransportHandlers } from './transport.js';

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

  protected deliverDrain(): void {
    if (!this.closeDelivered) this.handlers?.onDrain();
  }

  /**
   * After a send: true while `buffered` is within `highWater`; otherwise remembers that the
   * sender now waits for `onDrain` (see `drainedTo`).
   */
  protected acceptsMore(buffered: number, highWater: number): boolean {
    if (buffered <= highWater) return true;
    this.senderWaits = true;
    return false;
  }

  /** Buffered bytes went down to `buffered`: wakes a waiting sender once it is within `highWater`. */
  protected drainedTo(buffered: number, highWater: number): void {
    if (!this.senderWaits || buffered > highWater) return;
    this.senderWaits = false;
    this.deliverDrain();
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
