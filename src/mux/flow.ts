/**
 * Receive-side credit: how much the peer may still send, when to grant more, and window
 * auto-tuning. The sender side is just a counter (see Channel.sendCredit); all policy is here.
 *
 * Auto-tuning aims the window at a few times the path's bandwidth x delay, measured here: the
 * rate the reader consumed data over the last epoch (at least one round trip and 10 ms, so
 * bursts of arrivals do not read as speed) times the path's round trip without queueing (the
 * session's recent minimum). While the window is what limits throughput, that target is above
 * the window and it doubles per epoch; it stops once the link or the reader is the limit, or
 * when a doubling no longer raises the consumption rate (the extra bytes would only queue in the
 * buffers below the mux; this also catches a round trip measured while already queued). So a long fat link gets its megabytes, a loopback path keeps a small window
 * and a short queue for interactive channels to wait behind, and a slow reader never grows
 * its window at all.
 */

/** Target window as a multiple of the measured bandwidth x minimum round trip. */
export const BDP_FACTOR = 4;
/** Shortest epoch over which the consumption rate is measured, ms. */
export const MIN_EPOCH_MS = 10;
/**
 * A doubling that raised the consumption rate by less than this factor found the plateau: the
 * window is no longer what limits throughput (the extra bytes only queue). Growth resumes only
 * if the rate later rises this much above the plateau on its own.
 */
export const RATE_GAIN_TO_GROW = 1.25;

export class ReceiveWindow {
  /** Current window size: the most the peer may have in flight plus unconsumed. */
  size: number;
  /** Bytes the peer may still send before it must wait for a grant. */
  credit: number;
  private unacked = 0;
  private epochStart: number;
  private epochBytes = 0;
  private lastRate = 0;
  private grewLastEpoch = false;
  private plateauRate = 0;

  /**
   * @param initial window both sides assume at start (the peer's starting credit)
   * @param max ceiling for auto-tuning; equal to `initial` disables it
   * @param grantFraction grant once this fraction of the window was consumed (0.5 = half)
   */
  constructor(initial: number, private readonly max: number, private readonly grantFraction: number) {
    this.size = initial;
    this.credit = initial;
    this.epochStart = performance.now();
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
   *   not measured yet (no tuning then)
   */
  consume(n: number, rttMs: number | undefined): number {
    this.unacked += n;
    this.epochBytes += n;
    if (this.unacked < this.size * this.grantFraction) return 0;
    let increment = this.unacked;
    if (rttMs !== undefined && this.size < this.max) {
      const now = performance.now();
      const elapsed = now - this.epochStart;
      if (elapsed >= Math.max(rttMs, MIN_EPOCH_MS)) {
        const rate = this.epochBytes / elapsed;
        if (this.grewLastEpoch && rate < this.lastRate * RATE_GAIN_TO_GROW) this.plateauRate = Math.max(this.plateauRate, this.lastRate);
        const target = BDP_FACTOR * rate * rttMs;
        this.grewLastEpoch = false;
        if (target > this.size && rate >= this.plateauRate * RATE_GAIN_TO_GROW) {
          const grown = Math.min(this.size * 2, this.max);
          increment += grown - this.size;
          this.size = grown;
          this.grewLastEpoch = true;
        }
        this.lastRate = rate;
        this.epochStart = now;
        this.epochBytes = 0;
      }
    }
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
