/**
 * The session's round-trip estimator: one PING at a time, the smoothed and the minimum round
 * trip from its PONG, the extra samples at start-up and the refresh while data flows. It only
 * decides when to probe and what a sample means; the session puts the PINGs on the wire and
 * decides what a ping left unanswered costs (the keepalive timeout).
 */

/**
 * Auto-tuning sizes windows against the smallest round trip seen in this period: a sample taken
 * while bulk data fills the buffers below the mux includes that queue, and growing windows on it
 * would only deepen the queue (and every interactive channel's wait behind it).
 */
export const MIN_RTT_PERIOD_MS = 30_000;
/**
 * Extra round-trip samples after the first, at these delays (ms) from session start: the first
 * samples carry start-up work on both sides (cold code, the handshake just before), later ones
 * show the path itself.
 */
export const START_RTT_SAMPLE_DELAYS_MS: readonly number[] = [0, 50, 200, 1000];
/** While data flows, the round-trip estimate that drives auto-tuning is refreshed this often. */
export const RTT_REFRESH_MS = 1000;
/** Weight of a new sample in the smoothed round trip (RFC 6298's alpha). */
const SMOOTHING = 0.125;

/** What the estimator needs from its session. */
export interface RttProbeHost {
  /** Puts a PING with this 8-byte opaque payload on the wire. */
  sendPing(opaque: Buffer): void;
  /** The PING sent last went unanswered for `pongTimeoutMs`. */
  pingTimedOut(): void;
}

/** Round-trip samples from PING/PONG: smoothed, minimum, when to probe. */
export class RttEstimator {
  private pingId = 0;
  private pingSentAt = 0;
  private outstanding = false;
  private pongTimer: NodeJS.Timeout | undefined;
  private smoothed: number | undefined;
  private min: number | undefined;
  private minAt = 0;
  private samples = 0;
  private startTimers: NodeJS.Timeout[] = [];
  private stopped = false;

  /** `pongTimeoutMs` 0: a ping may stay unanswered for ever (keepalive off). */
  constructor(
    private readonly host: RttProbeHost,
    private readonly pongTimeoutMs: number,
  ) {}

  /** Smoothed round trip in ms, once measured. */
  get smoothedMs(): number | undefined {
    return this.smoothed;
  }

  /** Smallest round trip in the last MIN_RTT_PERIOD_MS (the path without queueing), ms. */
  get minMs(): number | undefined {
    return this.min;
  }

  /** Sends a PING unless one is out already (its answer, or its timeout, is still to come). */
  probe(): void {
    if (this.outstanding || this.stopped) return;
    this.outstanding = true;
    this.pingId = (this.pingId + 1) >>> 0;
    const opaque = Buffer.alloc(8);
    opaque.writeUInt32BE(this.pingId, 0);
    this.pingSentAt = performance.now();
    this.host.sendPing(opaque);
    if (this.pongTimeoutMs > 0) {
      this.pongTimer = setTimeout(() => {
        this.pongTimer = undefined;
        this.host.pingTimedOut();
      }, this.pongTimeoutMs);
      this.pongTimer.unref();
    }
  }

  /** Data is flowing and the window may grow: probe again if the estimate is getting old. */
  refresh(): void {
    if (performance.now() - this.pingSentAt > RTT_REFRESH_MS) this.probe();
  }

  /**
   * A PONG with this 8-byte payload arrived. Returns the minimum round trip when it answered
   * the ping that is out (a sample was taken), undefined for a stale or unknown answer.
   */
  onPong(payload: Buffer): number | undefined {
    if (payload.readUInt32BE(0) !== this.pingId || !this.outstanding) return undefined;
    this.outstanding = false;
    clearTimeout(this.pongTimer);
    this.pongTimer = undefined;
    const now = performance.now();
    const sample = now - this.pingSentAt;
    this.smoothed = this.smoothed === undefined ? sample : this.smoothed * (1 - SMOOTHING) + sample * SMOOTHING;
    if (this.min === undefined || sample <= this.min || now - this.minAt > MIN_RTT_PERIOD_MS) {
      this.min = sample;
      this.minAt = now;
    }
    const next = START_RTT_SAMPLE_DELAYS_MS[this.samples++];
    if (next !== undefined) {
      const timer = setTimeout(() => this.probe(), next);
      timer.unref();
      this.startTimers.push(timer);
    }
    return this.min;
  }

  /**
   * Forgets the estimate and measures again (the path may have changed). A ping still out was
   * sent before the change; its answer would count the outage as a round trip, so a fresh ping
   * (a new id) makes that answer ignored.
   */
  reset(): void {
    if (this.stopped) return;
    this.min = undefined;
    this.smoothed = undefined;
    clearTimeout(this.pongTimer);
    this.pongTimer = undefined;
    this.outstanding = false;
    this.probe();
  }

  /** Cancels every timer; no more pings. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.pongTimer);
    for (const timer of this.startTimers) clearTimeout(timer);
    this.startTimers = [];
  }
}
