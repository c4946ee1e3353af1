/**
 * How many unacknowledged bytes the resumable layer lets the layer above keep on the path before
 * its `send` says stop. Everything unacknowledged is queued somewhere on the path (mostly in the
 * socket buffers between the processes), and every channel of the session waits behind it; a
 * bulk transfer on a short path would otherwise keep up to `replayHighWater` there.
 *
 * The bound is `replayHighWater` until the path's round trip is known, then that round trip's
 * worth of bytes at `inFlightRate`, at least `minInFlight`. A delay-based controller that moves
 * the bound with queueing delay belongs here, beside this rule, not in the transport.
 */
import type { ResumeConfig } from './config.js';

/** The limits the bound is made of (see ResumeConfig for each). */
export type InFlightConfig = Pick<ResumeConfig, 'replayHighWater' | 'inFlightRate' | 'minInFlight'>;

export class InFlightBound {
  private bound: number;
  /** Lowest round trip reported for the current connection. */
  private pathMinRtt: number | undefined;

  constructor(private readonly config: InFlightConfig) {
    this.bound = config.replayHighWater;
  }

  /** Unacknowledged bytes above which the sender should wait. */
  get limit(): number {
    return this.bound;
  }

  /**
   * Sizes the bound from a round-trip sample of the current connection, ms. Only the lowest
   * sample since the connection was taken counts: a later, higher one was taken behind the very
   * queue this bound allows, and would ratchet it up under a long transfer. Lower samples only
   * lower the bound, so nothing waits for a drain here.
   */
  onPathRtt(minRttMs: number): void {
    if (!Number.isFinite(minRttMs) || minRttMs < 0) return;
    if (this.pathMinRtt !== undefined && minRttMs >= this.pathMinRtt) return;
    this.pathMinRtt = minRttMs;
    const c = this.config;
    this.bound = Math.min(c.replayHighWater, Math.max(c.minInFlight, Math.round(c.inFlightRate * minRttMs)));
  }

  /** A new connection, perhaps a longer path: the bound starts over until it is measured. */
  newPath(): void {
    this.bound = this.config.replayHighWater;
    this.pathMinRtt = undefined;
  }
}
