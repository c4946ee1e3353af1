/**
 * The delay-based in-flight controller: how many unacknowledged bytes a resumable session may
 * keep on its path, moved on every acknowledgement by the queueing delay that ACK measured.
 *
 * Why: everything unacknowledged waits somewhere on the path (user-space queues and socket
 * buffers in three processes, four TCP legs), first in first out for every channel. A fixed
 * bound big enough for a long path is milliseconds of queue on a short one, and an interactive
 * frame waits behind all of it. The controller keeps what the path carries at its lowest delay
 * plus a small standing queue, so that the mux's scheduler, not a socket buffer, decides who
 * goes next.
 *
 * The rule is LEDBAT's (RFC 6817) with Copa's standing-delay filter, on bytes rather than
 * packets: queueing delay = standing round trip (the lowest of the last few samples, which
 * filters out ack jitter) - the path's base round trip (the lowest sample on this connection).
 * Below the target the bound grows by up to the bytes acknowledged (at most doubling per round
 * trip, as a slow start); above it, it shrinks by up to half of them (at most halving per round
 * trip). The target is `targetDelayMs`, or a fraction of the base round trip on long paths, so
 * jitter of a mobile link is not taken for a queue.
 *
 * The bound never falls below `floorBytes`, nor below a few ACK steps: a peer that acknowledges
 * only every N bytes (an older peer acknowledges per 32 messages) would otherwise stall the
 * sender between its ACKs. It grows only when the sender used it, so an idle or application-
 * limited session keeps a bound it has proven.
 *
 * Pure: the caller passes samples and the time; nothing here reads a clock.
 */
import { AckSteps } from './ack-steps.js';

/** The controller's limits; see ResumeConfig for the defaults. */
export interface DelayControllerConfig {
  /** Starting bound, bytes, before any sample. */
  initialBytes: number;
  /** Lowest bound, bytes. */
  floorBytes: number;
  /** Highest bound, bytes. */
  ceilingBytes: number;
  /** Queueing delay the controller aims at, ms (the long-path target may be larger). */
  targetDelayMs: number;
}

/** Fraction of the base round trip that counts as the target on long paths. */
const TARGET_RTT_FRACTION = 0.25;
/** Samples the standing round trip is the minimum of. */
const STANDING_SAMPLES = 4;
/** The bound stays at least this many of the largest recent ACK steps. */
const ACK_STEPS_IN_FLIGHT = 3;
/** The bound grows only when at least this fraction of it was in flight (not application-limited). */
const USED_FRACTION = 0.5;
/**
 * ACKs covering less than this give no delay sample: the peer sends those on its ACK timer (the
 * end of a burst, an interactive exchange), so their round trip includes the timer's wait.
 */
const MIN_SAMPLE_BYTES = 16 * 1024;

export class DelayController {
  private bytes: number;
  private baseRtt = Infinity;
  private readonly recent: number[] = [];
  private readonly steps = new AckSteps();

  constructor(private readonly config: DelayControllerConfig) {
    this.bytes = clamp(config.initialBytes, config.floorBytes, config.ceilingBytes);
  }

  /** Unacknowledged bytes above which the sender should wait. */
  get limit(): number {
    return this.bytes;
  }

  /** The path's base round trip on this connection, ms (Infinity before a sample). */
  get baseRttMs(): number {
    return this.baseRtt;
  }

  /** The queueing delay the controller aims at, ms. */
  get targetMs(): number {
    return Math.max(this.config.targetDelayMs, Number.isFinite(this.baseRtt) ? this.baseRtt * TARGET_RTT_FRACTION : 0);
  }

  /** The queueing delay the last samples show, ms (0 before a sample). */
  get queueDelayMs(): number {
    if (this.recent.length === 0) return 0;
    return Math.max(0, Math.min(...this.recent) - this.baseRtt);
  }

  /**
   * One acknowledgement.
   * @param ackedBytes bytes it acknowledged
   * @param rttMs time from sending the newest message it covers to receiving it
   * @param inFlightBytes unacknowledged bytes just before it (what the sender was using)
   */
  onAck(ackedBytes: number, rttMs: number, inFlightBytes: number): void {
    if (!(ackedBytes > 0) || !Number.isFinite(rttMs) || rttMs < 0) return;
    this.steps.add(ackedBytes);
    if (ackedBytes < MIN_SAMPLE_BYTES) {
      this.bytes = Math.round(clamp(this.bytes, this.lowest(), this.config.ceilingBytes));
      return;
    }
    this.recent.push(rttMs);
    if (this.recent.length > STANDING_SAMPLES) this.recent.shift();
    if (rttMs < this.baseRtt) this.baseRtt = rttMs;

    const target = this.targetMs;
    const offTarget = (target - this.queueDelayMs) / target; // 1 with no queue, negative above target
    if (offTarget > 0) {
      if (inFlightBytes >= this.bytes * USED_FRACTION) this.bytes += ackedBytes * offTarget;
    } else {
      this.bytes -= ackedBytes * Math.min(1, -offTarget) * 0.5;
    }
    this.bytes = Math.round(clamp(this.bytes, this.lowest(), this.config.ceilingBytes));
  }

  /** A base round trip measured elsewhere (the mux's pings), ms: only ever lowers the base. */
  onRttSample(rttMs: number): void {
    if (Number.isFinite(rttMs) && rttMs >= 0 && rttMs < this.baseRtt) this.baseRtt = rttMs;
  }

  /** A new connection, perhaps a longer path: measure again from the starting bound. */
  newPath(): void {
    this.bytes = clamp(this.config.initialBytes, this.config.floorBytes, this.config.ceilingBytes);
    this.baseRtt = Infinity;
    this.recent.length = 0;
    this.steps.clear();
  }

  private lowest(): number {
    return Math.min(this.config.ceilingBytes, Math.max(this.config.floorBytes, ACK_STEPS_IN_FLIGHT * this.steps.largest));
  }
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
