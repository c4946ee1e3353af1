/**
 * How many unacknowledged bytes the resumable layer lets the layer above keep on the path before
 * its `send` says stop. Everything unacknowledged is queued somewhere on the path (mostly in the
 * socket buffers between the processes), and every channel of the session waits behind it; a
 * bulk transfer on a short path would otherwise keep up to `replayHighWater` there.
 *
 * Two rules, chosen by `targetQueueDelayMs`:
 * - 0 (the default): `replayHighWater` until the path's round trip is known, then that round
 *   trip's worth of bytes at `inFlightRate`, at least `minInFlight`. Only the lowest sample since
 *   the connection was taken counts: a later, higher one was taken behind the very queue this
 *   bound allows, and would ratchet it up under a long transfer. Never below two of the peer's
 *   recent ACK steps either: the floor is low (2 MiB) because this side's receivers acknowledge
 *   every `ackEveryBytes`, but an older peer acknowledges only every 32 messages (2 MiB of full
 *   ones), and a bound below its step would wait for its ACK timer on every step.
 * - non-zero: the delay-based controller of delay-controller.ts, moved on every ACK by the
 *   queueing delay that ACK measured, between `minInFlight` and `replayHighWater`.
 */
import type { ResumeConfig } from './config.js';
import { AckSteps } from './ack-steps.js';
import { DelayController } from './delay-controller.js';

/** With the round-trip rule, the bound stays at least this many of the peer's largest recent ACK steps. */
export const ACK_STEPS_IN_FLIGHT = 2;

/** The limits the bound is made of (see ResumeConfig for each). */
export type InFlightConfig = Pick<
  ResumeConfig,
  'replayHighWater' | 'inFlightRate' | 'minInFlight' | 'targetQueueDelayMs' | 'initialInFlight'
>;

/** The in-flight bound of one resumable session (see the module comment). */
export class InFlightBound {
  private bound: number;
  /** Lowest round trip reported for the current connection (the round-trip rule). */
  private pathMinRtt: number | undefined;
  private readonly controller: DelayController | undefined;
  /** The peer's recent ACK steps (the round-trip rule's step floor). */
  private readonly steps = new AckSteps();

  constructor(private readonly config: InFlightConfig) {
    this.bound = config.replayHighWater;
    if (config.targetQueueDelayMs > 0) {
      const floorBytes = Math.min(config.minInFlight, config.replayHighWater);
      this.controller = new DelayController({
        initialBytes: Math.min(Math.max(config.initialInFlight, floorBytes), config.replayHighWater),
        floorBytes,
        ceilingBytes: config.replayHighWater,
        targetDelayMs: config.targetQueueDelayMs,
      });
    }
  }

  /** Unacknowledged bytes above which the sender should wait. */
  get limit(): number {
    if (this.controller) return this.controller.limit;
    return Math.min(this.config.replayHighWater, Math.max(this.bound, ACK_STEPS_IN_FLIGHT * this.steps.largest));
  }

  /**
   * An ACK of the current connection (used by the delay controller).
   * @param ackedBytes bytes it acknowledged
   * @param rttMs time since the newest message it covers was sent
   * @param inFlightBytes unacknowledged bytes just before it
   */
  onAck(ackedBytes: number, rttMs: number, inFlightBytes: number): void {
    if (this.controller) {
      this.controller.onAck(ackedBytes, rttMs, inFlightBytes);
      return;
    }
    if (ackedBytes > 0) this.steps.add(ackedBytes);
  }

  /** A round-trip sample of the current connection from the mux's pings, ms. */
  onPathRtt(minRttMs: number): void {
    if (!Number.isFinite(minRttMs) || minRttMs < 0) return;
    if (this.controller) {
      this.controller.onRttSample(minRttMs);
      return;
    }
    if (this.pathMinRtt !== undefined && minRttMs >= this.pathMinRtt) return;
    this.pathMinRtt = minRttMs;
    const c = this.config;
    this.bound = Math.min(c.replayHighWater, Math.max(c.minInFlight, Math.round(c.inFlightRate * minRttMs)));
  }

  /** A new connection, perhaps a longer path: the bound starts over until it is measured. */
  newPath(): void {
    this.bound = this.config.replayHighWater;
    this.pathMinRtt = undefined;
    this.controller?.newPath();
  }
}
