/**
 * Receive-side credit: how much the peer may still send, when to grant more, and window
 * auto-tuning. The sender side is just a counter (see Channel.sendCredit); all policy is here.
 *
 * Auto-tuning follows the Chromium/quic-go rule: if the consumer used half a window in less
 * than two round trips, the window (not the link) is what limits throughput, so the window
 * doubles, up to the configured ceiling. A slow consumer never grows its window, so memory
 * stays bounded by what it actually drains.
 */
export class ReceiveWindow {
  /** Current window size: the most the peer may have in flight plus unconsumed. */
  size: number;
  /** Bytes the peer may still send before it must wait for a grant. */
  credit: number;
  private unacked = 0;
  private lastGrantAt: number;

  /**
   * @param initial window both sides assume at start (the peer's starting credit)
   * @param max ceiling for auto-tuning; equal to `initial` disables it
   * @param grantFraction grant once this fraction of the window was consumed (0.5 = half)
   */
  constructor(
    initial: number,
    private readonly max: number,
    private readonly grantFraction: number,
  ) {
    this.size = initial;
    this.credit = initial;
    this.lastGrantAt = performance.now();
  }

  /** Accounts for `n` received bytes. False when the peer overran its credit (a protocol error). */
  receive(n: number): boolean {
    if (n > this.credit) return false;
    this.credit -= n;
    return true;
  }

  /**
   * Accounts for `n` consumed bytes and returns the credit to grant now (0 for none yet).
   * @param rttMs the path's round trip without queueing (the recent minimum), or undefined when
   *   not measured yet
   */
  consume(n: number, rttMs: number | undefined): number {
    this.unacked += n;
    if (this.unacked < this.size * this.grantFraction) return 0;
    const now = performance.now();
    let increment = this.unacked;
    if (rttMs !== undefined && this.size < this.max && now - this.lastGrantAt < 2 * rttMs) {
      const grown = Math.min(this.size * 2, this.max);
      increment += grown - this.size;
      this.size = grown;
    }
    this.lastGrantAt = now;
    this.unacked = 0;
    this.credit += increment;
    return increment;
  }

  /**
   * Raises the window to `size` (when the local side starts with more than the protocol's
   * initial window) and returns the extra credit to grant.
   */
  raiseTo(size: number): number {
    if (size <= this.size) return 0;
    const extra = size - this.size;
    this.size = size;
    this.credit += extra;
    return extra;
  }
}
