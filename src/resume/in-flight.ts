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
 *
 * With the round-trip rule, the controller still runs beside it (`interactiveQueueDelayMs`,
 * floor `interactiveMinInFlight`), fed by every ACK, and its bound counts only while
 * latency-sensitive traffic passes (`noteInteractive`, for `interactiveHoldMs` after the last
 * hint): then the limit is the lower of the two. Why not always: on a machine whose tunnel
 * processes are CPU-bound the round trip rises with CPU waits too, and the controller gives up
 * throughput that bulk alone needs; beside a keystroke, a short queue is worth more. Fed while
 * not counting, it has already shrunk to its floor when a keystroke arrives beside bulk, so the
 * first one does not wait for it to converge.
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
> &
  Partial<Pick<ResumeConfig, 'interactiveQueueDelayMs' | 'interactiveHoldMs' | 'interactiveMinInFlight'>>;

/** The in-flight bound of one resumable session (see the module comment). */
export class InFlightBound {
  private bound: number;
  /** Lowest round trip reported for the current connection (the round-trip rule). */
  private pathMinRtt: number | undefined;
  private readonly controller: DelayController | undefined;
  /** The controller beside the round-trip rule, counted while latency-sensitive traffic passes. */
  private readonly interactive: DelayController | undefined;
  /** Until when (performance.now() ms) the interactive controller's bound counts. */
  private interactiveUntil = -Infinity;
  /** The first and the last hint of the current run of them (no gap of interactiveHoldMs). */
  private talkSince = -Infinity;
  private lastHint = -Infinity;
  /** Hints in the current run. */
  private talkHints = 0;
  /** The peer's recent ACK steps (the round-trip rule's step floor). */
  private readonly steps = new AckSteps();

  constructor(private readonly config: InFlightConfig) {
    this.bound = config.replayHighWater;
    if (config.targetQueueDelayMs > 0) {
      this.controller = controllerFor(config.minInFlight, config.initialInFlight, config.targetQueueDelayMs, config);
    } else if ((config.interactiveQueueDelayMs ?? 0) > 0) {
      const floor = config.interactiveMinInFlight ?? config.minInFlight;
      this.interactive = controllerFor(floor, floor, config.interactiveQueueDelayMs!, config);
    }
  }

  /** Unacknowledged bytes above which the sender should wait, at `now` (performance.now() ms). */
  limitAt(now: number): number {
    if (this.controller) return this.controller.limit;
    const rule = Math.min(this.config.replayHighWater, Math.max(this.bound, ACK_STEPS_IN_FLIGHT * this.steps.largest));
    return this.interactive && now < this.interactiveUntil ? Math.min(rule, this.interactive.limit) : rule;
  }

  /** Unacknowledged bytes above which the sender should wait now. */
  get limit(): number {
    return this.limitAt(performance.now());
  }

  /** True while the interactive controller's bound counts. */
  interactiveAt(now: number): boolean {
    return this.interactive !== undefined && now < this.interactiveUntil;
  }

  /** Latency-sensitive traffic passes at `now`: the interactive bound counts for `interactiveHoldMs`. */
  noteInteractive(now: number): void {
    if (!this.interactive) return;
    if (now >= this.interactiveUntil) {
      this.talkSince = now;
      this.talkHints = 0;
    }
    this.talkHints++;
    this.lastHint = now;
    this.interactiveUntil = now + (this.config.interactiveHoldMs ?? 0);
  }

  /**
   * True while the interactive bound counts and its current run of hints has at least `hints` of
   * them over at least `ms`: a channel that keeps talking, not the few small writes that open or
   * end a transfer (a control connection's exchange, a request).
   */
  talkingAt(now: number, ms: number, hints: number): boolean {
    return this.interactiveAt(now) && this.talkHints >= hints && this.lastHint - this.talkSince >= ms;
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
    this.interactive?.onAck(ackedBytes, rttMs, inFlightBytes);
  }

  /** A round-trip sample of the current connection from the mux's pings, ms. */
  onPathRtt(minRttMs: number): void {
    if (!Number.isFinite(minRttMs) || minRttMs < 0) return;
    if (this.controller) {
      this.controller.onRttSample(minRttMs);
      return;
    }
    this.interactive?.onRttSample(minRttMs);
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
    this.interactive?.newPath();
  }
}

/** A delay controller between `floor` (at most replayHighWater) and replayHighWater, starting at `initial`. */
function controllerFor(floor: number, initial: number, targetDelayMs: number, config: InFlightConfig): DelayController {
  const floorBytes = Math.min(floor, config.replayHighWater);
  return new DelayController({
    initialBytes: Math.min(Math.max(initial, floorBytes), config.replayHighWater),
    floorBytes,
    ceilingBytes: config.replayHighWater,
    targetDelayMs,
  });
}
