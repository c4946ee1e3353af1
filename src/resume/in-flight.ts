/**
 * How many unacknowledged bytes the resumable layer lets the layer above keep on the path before
 * its `send` says stop. Everything unacknowledged is queued somewhere on the path (mostly in the
 * socket buffers between the processes), and every channel of the session waits behind it.
 *
 * The rule is the delay-based controller of delay-controller.ts: it starts at `initialInFlight`,
 * takes a round-trip sample from every ACK (the time from sending the newest message the ACK
 * covers), and keeps what the path carries at its lowest delay plus `targetQueueDelayMs` of
 * queue, between `minInFlight` and `replayHighWater`.
 */
import type { ResumeConfig } from './config.js';
import { DelayController } from './delay-controller.js';

/** The limits the bound is made of (see ResumeConfig for each). */
export type InFlightConfig = Pick<ResumeConfig, 'replayHighWater' | 'initialInFlight' | 'minInFlight' | 'targetQueueDelayMs'>;

export class InFlightBound {
  private readonly controller: DelayController;

  constructor(config: InFlightConfig) {
    const floorBytes = Math.min(config.minInFlight, config.replayHighWater);
    this.controller = new DelayController({
      initialBytes: Math.min(Math.max(config.initialInFlight, floorBytes), config.replayHighWater),
      floorBytes,
      ceilingBytes: config.replayHighWater,
      targetDelayMs: config.targetQueueDelayMs,
    });
  }

  /** Unacknowledged bytes above which the sender should wait. */
  get limit(): number {
    return this.controller.limit;
  }

  /** The queueing delay the last ACKs showed, ms. */
  get queueDelayMs(): number {
    return this.controller.queueDelayMs;
  }

  /**
   * An ACK of the current connection.
   * @param ackedBytes bytes it acknowledged
   * @param rttMs time since the newest message it covers was sent
   * @param inFlightBytes unacknowledged bytes just before it
   */
  onAck(ackedBytes: number, rttMs: number, inFlightBytes: number): void {
    this.controller.onAck(ackedBytes, rttMs, inFlightBytes);
  }

  /** A round-trip sample measured above (the mux's pings), ms: it can only lower the base round trip. */
  onPathRtt(rttMs: number): void {
    this.controller.onRttSample(rttMs);
  }

  /** A new connection, perhaps a longer path: the bound starts over. */
  newPath(): void {
    this.controller.newPath();
  }
}
