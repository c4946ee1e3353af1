/**
 * Receive-side credit: how much the peer may still send, when to grant more, and window
 * auto-tuning. The sender side is just a counter (see Channel.sendCredit); all policy is here.
 *
 * Auto-tuning follows the Chromium/quic-go rule: if the consumer used half a window in less
 * than two round trips, the window (not the link) is what limits throughput, so the window
 * doubles, up to the configured ceiling. A slow consumer never grows its window, so memory
 * stays bounded by what it actually drains.
 */
/**
 * The fastest one channel is expected to go, bytes per ms (500 MB/s: about twice what one
 * channel of the sealed tunnel moves on this 2-core machine). A window larger than this rate x
 * the minimum round trip cannot make the channel faster, only deepen the queue in the socket
 * buffers between the processes on the path, which every other channel of the session waits
 * behind. Without this bound, bursty consumption on a short path (a CPU-bound pipeline draining
 * after a pause) passes the half-window test and bulk windows grow to megabytes: interactive
 * round trips under a bulk transfer took 40-50 ms at p50 on loopback (bench `interactive`),
 * 8-18 ms with it, bulk throughput unchanged within the noise; long paths are not affected
 * (their rate x round trip is above the window ceiling).
 */
export const MAX_CHANNEL_RATE_BYTES_PER_MS = 500_000;

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
  constructor(private readonly initial: number, private readonly max: number, private readonly grantFraction: number) {
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
    const ceiling = this.ceiling(rttMs);
    if (this.size > ceiling) {
      // Shrink (a window grown against a cold, slow first round trip): grant less until it fits.
      const cut = Math.min(this.size - ceiling, increment);
      increment -= cut;
      this.size -= cut;
    } else if (rttMs !== undefined && this.size < ceiling && now - this.lastGrantAt < 2 * rttMs) {
      const grown = Math.min(this.size * 2, ceiling);
      increment += grown - this.size;
      this.size = grown;
    }
    this.lastGrantAt = now;
    this.unacked = 0;
    this.credit += increment;
    return increment;
  }

  /** The most this window may grow to on a path with this round trip. */
  ceiling(rttMs: number | undefined): number {
    if (rttMs === undefined) return this.max;
    return Math.max(this.initial, Math.min(this.max, MAX_CHANNEL_RATE_BYTES_PER_MS * rttMs));
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
