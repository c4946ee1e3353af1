/**
 * Pacing of a transfer while an interactive channel talks beside it: the sender lets DATA out no
 * faster than a fraction of the rate the path was last seen to deliver, so that the processes
 * along it keep some idle time.
 *
 * Why: on a small machine a saturating transfer keeps every process of the tunnel busy, and a
 * keystroke waits at each hop for a busy process to be scheduled and to finish its turn. The
 * in-flight bound keeps the queues short but not the processes idle: that takes a rate below
 * what they can move. Measured beside iperf3 on a two-core machine, the loaded round trip falls
 * from milliseconds to a few hundred microseconds once the transfer runs below the path's
 * maximum.
 *
 * The delivery rate is measured from ACKs: bytes acknowledged over at least PACE_SAMPLE_MS, in
 * at least PACE_SAMPLE_MIN_ACKS ACKs no further apart than PACE_MAX_ACK_GAP_MS (a sample that
 * spans an idle sender would show a rate far below the path's). A sample counts only when the
 * path limited the sender during it (most of its ACKs arrived while the sender waited for the
 * in-flight bound or the connection below) and the pacer never did: a transfer slower than the
 * path (an application-limited one) says nothing of what the path moves, and one held by the
 * pacer would walk the estimate down by the pacing fraction each time. The estimate is the
 * highest of the last PACE_SAMPLES such samples. A sample in which the pacer held the sender and
 * the path did not limit it shows the path keeps up with the paced rate: the estimate grows by
 * PACE_GROWTH_PERCENT, so a path that got faster (or a transfer that was still ramping up when
 * it was measured) is found again, slowly. Once the paced rate reaches what the path moves, the
 * path holds the sender before the pacer does; those samples count, and the estimate is measured
 * again. A path that got slower than the paced rate shows the same way.
 *
 * The pacer is a token bucket: DATA spends bytes, which come back at the paced rate up to a burst
 * of PACE_BURST_MS (at least PACE_BURST_MIN_BYTES). Light frames are not held by it: the mux's
 * light lane passes a blocked transport.
 *
 * Pure: the caller passes the time; nothing here reads a clock or starts a timer.
 */

/** A delivery-rate sample spans at least this long, ms (shorter ones are ACK bunching). */
export const PACE_SAMPLE_MS = 50;
/**
 * ACKs further apart than this, ms, end a sample without counting it: the sender was idle (or the
 * transfer too slow to pace) in between, and a sample spanning it would show a rate far below the
 * path's.
 */
export const PACE_MAX_ACK_GAP_MS = PACE_SAMPLE_MS;
/** A sample counts only with at least this many ACKs in it. */
export const PACE_SAMPLE_MIN_ACKS = 4;
/** The estimate is the highest of this many recent samples the path limited. */
export const PACE_SAMPLES = 5;
/** A sample counts when at least this share of its ACKs arrived while the path held the sender. */
export const PACE_PATH_LIMITED_SHARE = 0.5;
/**
 * The estimate grows by this many percent per sample the pacer limited and the path did not:
 * about a fifth per second at PACE_SAMPLE_MS. From a fresh measurement the paced rate climbs back
 * to the path's maximum within about half a second at 90 %, where the path holds the sender and
 * measures it again: a sawtooth (474-712 MB/s of estimate in a debug run on loopback).
 */
export const PACE_GROWTH_PERCENT = 1;
/** The bucket holds at most this long of the paced rate, ms: a late timer loses no rate. */
export const PACE_BURST_MS = 2;
/** ...and at least this many bytes (one full mux batch and then some). */
export const PACE_BURST_MIN_BYTES = 128 * 1024;

/** Why the sender waited when an ACK arrived. */
export type SenderWait = 'none' | 'path' | 'pacer';

/** Delivery-rate estimate and token bucket of one resumable session (see the module comment). */
export class DeliveryPacer {
  /** Bytes per ms the path delivered when it last limited the sender; 0 before such a sample. */
  private estimate = 0;
  private readonly samples: number[] = [];
  private sampleStart = 0;
  private sampleBytes = 0;
  private sampleAcks = 0;
  private samplePathAcks = 0;
  private samplePaced = false;
  private lastAckAt = -Infinity;
  /** Whether the bucket counted at the last call (pacing on). */
  private pacing = false;
  private tokens = 0;
  private refilledAt = 0;

  /** @param percent the paced rate, percent of the estimate (0: never paces) */
  constructor(private readonly percent: number) {}

  /** The delivery-rate estimate, bytes per ms (0 before a sample the path limited). */
  get deliveryRate(): number {
    return this.estimate;
  }

  /** The paced rate, bytes per ms (0: no pacing). */
  get rate(): number {
    return (this.estimate * this.percent) / 100;
  }

  /**
   * One ACK of `bytes` at `now`, and why the sender waited then. Samples restart from here when
   * the path changes (`reset`).
   */
  onAck(bytes: number, now: number, wait: SenderWait): void {
    const gap = now - this.lastAckAt;
    this.lastAckAt = now;
    if (gap > PACE_MAX_ACK_GAP_MS) {
      this.startSample(now);
      return; // the first ACK opens the interval; its bytes were sent before it
    }
    this.sampleBytes += bytes;
    this.sampleAcks++;
    if (wait === 'path') this.samplePathAcks++;
    if (wait === 'pacer') this.samplePaced = true;
    const elapsed = now - this.sampleStart;
    if (elapsed < PACE_SAMPLE_MS) return;
    if (this.sampleAcks < PACE_SAMPLE_MIN_ACKS) {
      // Too few ACKs to tell a rate: not counted.
    } else if (this.samplePaced) {
      // What a paced sender delivered is the paced rate, whatever the path would move: it never
      // lowers the estimate (on a busy machine the in-flight bound holds a paced sender too, and
      // counting those samples walked the rate down by the pacing fraction each time). Unless the
      // path limited it as well, the path may move more: the estimate grows (one learned while a
      // transfer still ramped up would otherwise hold it at that rate for good; the pacer's own
      // bursts make the connection below push back now and then, so "never" is too strict).
      if (this.samplePathAcks < this.sampleAcks * PACE_PATH_LIMITED_SHARE) this.estimate *= 1 + PACE_GROWTH_PERCENT / 100;
    } else if (this.samplePathAcks >= this.sampleAcks * PACE_PATH_LIMITED_SHARE) {
      this.samples.push(this.sampleBytes / elapsed);
      if (this.samples.length > PACE_SAMPLES) this.samples.shift();
      this.estimate = Math.max(...this.samples);
    }
    this.startSample(now);
  }

  /** The pacer held the sender at `now` (a sample spanning it is not the path's rate). */
  notePaced(): void {
    this.samplePaced = true;
  }

  /**
   * DATA of `bytes` leaves at `now`, while pacing is `on` (an interactive channel talks).
   * Returns true when the sender should wait for the bucket (see `waitMs`).
   */
  spend(bytes: number, now: number, on: boolean): boolean {
    if (!this.refill(now, on)) return false;
    this.tokens -= bytes;
    return this.tokens < 0;
  }

  /** True when the bucket lets DATA out at `now` (always, while not pacing). */
  ready(now: number, on: boolean): boolean {
    return !this.refill(now, on) || this.tokens >= 0;
  }

  /** How long from `now` until the bucket is back to zero, ms (0 when not pacing or not empty). */
  waitMs(now: number, on: boolean): number {
    if (!this.refill(now, on) || this.tokens >= 0) return 0;
    return -this.tokens / this.rate;
  }

  /** A new connection, perhaps another path: measure again before pacing. */
  reset(): void {
    this.estimate = 0;
    this.samples.length = 0;
    this.lastAckAt = -Infinity;
    this.pacing = false;
  }

  /** Brings the bucket to `now`; false when it does not count (pacing off, or no estimate). */
  private refill(now: number, on: boolean): boolean {
    const rate = this.rate;
    if (!on || rate <= 0) {
      this.pacing = false;
      return false;
    }
    const burst = Math.max(PACE_BURST_MIN_BYTES, rate * PACE_BURST_MS);
    if (!this.pacing) {
      this.pacing = true;
      this.tokens = burst;
    } else if (now > this.refilledAt) {
      this.tokens = Math.min(burst, this.tokens + (now - this.refilledAt) * rate);
    }
    this.refilledAt = now;
    return true;
  }

  private startSample(now: number): void {
    this.sampleStart = now;
    this.sampleBytes = 0;
    this.sampleAcks = 0;
    this.samplePathAcks = 0;
    this.samplePaced = false;
  }
}
