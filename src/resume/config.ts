/**
 * Every limit and timer of the resumable layer, with its default, in one place.
 * `resolveResumeConfig` fills defaults and rejects bad values before a session starts.
 */
import { DevstreamsError } from '../errors.js';
import { withDefaults, type Overrides } from '../util/config.js';

/** Every limit and timer of the resumable layer. */
export interface ResumeConfig {
  /**
   * How long a session may stay without a connection before it is given up: channels then end
   * with ERR_SESSION_LOST. Default 120 s (a hub restart or an LTE handover fits well inside).
   */
  giveUpMs: number;
  /** A cumulative ACK goes out at the latest after this many unacknowledged messages. Default 32. */
  ackEveryMessages: number;
  /**
   * ...once they hold at least this many bytes of DATA (0: whatever they hold). An ACK is a
   * record of its own through every hop (sealed, relayed, opened, a wake-up of the hub and of the
   * peer); an exchange of tiny messages (keystrokes, echoes, ~100-byte records) paid one every
   * 32 round trips, and is now acknowledged every 16 KiB (about 160 of them) or by the timer.
   * A message stream of the usual sizes (an HTTP load's records) still gets its ACK every 32,
   * and unacknowledged bytes stay well below `interactiveBesideBytes`. Default 16 KiB.
   */
  ackCountMinBytes: number;
  /**
   * ...or, when non-zero, after this many unacknowledged bytes of DATA: a sender's in-flight bound
   * need only be a couple of such steps (see `minInFlight`), and each ACK is a delay sample for a
   * sender that runs the delay controller (128 KiB suits it). 0 counts messages only (what
   * versions before this one do). Default 256 KiB.
   */
  ackEveryBytes: number;
  /** ...or this long after the first unacknowledged message, ms. Default 25 ms. */
  ackDelayMs: number;
  /** Interval between link pings (per connection liveness), ms. Default 5 s. */
  livenessIntervalMs: number;
  /**
   * A connection that delivered nothing (not even a pong) for this long is presumed dead: it is
   * closed and the session suspends and reconnects. Default 15 s.
   */
  livenessTimeoutMs: number;
  /**
   * Unacknowledged bytes above which `send` returns false (backpressure to the mux) until the
   * round trip is measured, the cap of the bound sized from it (see `inFlightRate`), and the
   * delay controller's ceiling. Default 16 MiB: enough for ~1 Gbit/s at 130 ms RTT.
   */
  replayHighWater: number;
  /**
   * Once the path's minimum round trip is known, `send` returns false above this many bytes per
   * ms of that round trip (unacknowledged bytes sit in the queues along the path, and every
   * channel waits behind them)... Default 500,000 (500 MB/s: twice what one tunnel moves on a
   * 2-core machine; a long path's bound reaches `replayHighWater`). Unused with the delay controller.
   */
  inFlightRate: number;
  /**
   * ...but never below this many bytes (and a value above `replayHighWater` counts as that): the
   * minimum round trip of a short path says nothing of the processing delay of a busy pipeline.
   * Everything in flight is a queue every channel waits behind (2 MiB is 6 ms at 350 MB/s).
   * Nor below two of the peer's recent ACK steps (in-flight.ts): a peer that acknowledges
   * every `ackEveryBytes` (256 KiB) needs no more than this floor, an older one that counts
   * only 32 messages (2 MiB of full ones) gets 4 MiB. Default 2 MiB (1 MiB gave up 12 % of
   * loopback throughput on a quiet machine, for a p99 under bulk of 11.5 against 14.5 ms). With the delay controller:
   * its floor (set it lower, e.g. 256 KiB).
   */
  minInFlight: number;
  /**
   * Non-zero turns on the delay-based controller (delay-controller.ts) instead of the rule above:
   * the queueing delay it aims at, ms. Default 0 (off): on a 2-core machine whose tunnel
   * processes are CPU-bound, the round trip rises with CPU waits as much as with queues, and the
   * controller cost throughput in measurements so far. Needs a peer that ACKs every
   * `ackEveryBytes`, or its floor stays at three of the peer's ACK steps.
   */
  targetQueueDelayMs: number;
  /** The delay controller's starting bound, bytes, before its first ACK. Default 1 MiB. */
  initialInFlight: number;
  /**
   * With `targetQueueDelayMs` 0: the queueing delay the delay controller aims at while
   * latency-sensitive traffic passes (the mux's hint that a light channel is talking, see
   * `interactiveHoldMs`), ms; the bound is then the lower of the controller's and the
   * round-trip rule's. Bulk alone keeps the round-trip rule and its throughput; a keystroke
   * beside bulk waits behind a short queue. 0 turns this off. Default 1 ms.
   */
  interactiveQueueDelayMs: number;
  /**
   * How long after the last latency-sensitive hint the session stays in that mode, ms: longer
   * than the gap between keystrokes, so a typing user does not flip it on every key. Default 1 s.
   */
  interactiveHoldMs: number;
  /**
   * A hint counts only while a transfer runs beside it: at least this many bytes unacknowledged
   * either way (sent and not yet acknowledged, or received and not yet acknowledged). The small
   * exchange that opens a bulk transfer (iperf3's or an HTTP client's request) comes before
   * anything is in flight, and must not hold the transfer to the tighter bound. Default 64 KiB.
   */
  interactiveBesideBytes: number;
  /**
   * The controller's floor while latency-sensitive traffic passes, bytes (it also stays at
   * least three of the peer's ACK steps). Default 256 KiB.
   */
  interactiveMinInFlight: number;
  /**
   * While latency-sensitive traffic passes, the receiver acknowledges at least every this many
   * DATA bytes (when lower than `ackEveryBytes`): each ACK is a delay sample for the peer's
   * controller, and its floor is three ACK steps. A receiver decision, not a wire change: an
   * older peer keeps its own cadence. Default 128 KiB.
   */
  interactiveAckEveryBytes: number;
  /**
   * While latency-sensitive traffic passes, DATA leaves no faster than this percentage of the
   * rate the path last delivered when it limited the sender (measured from ACKs; pacer.ts), so
   * that the tunnel's processes keep idle time and a keystroke does not wait at every hop for a
   * busy process to be scheduled. Light frames pass (the mux's light lane). 0 turns pacing off.
   * Default 0 (off): at 90, paired rounds beside iperf3 on a two-core machine halved the loaded
   * p50 (3.2 -> 1.5 ms) and cut p99 by a fifth (10.7 -> 8.5 ms), but the bulk beside the
   * keystrokes moved 72-86 % of what it moved unpaced, below the 90 % that issue 19 allows.
   */
  interactivePacePercent: number;
  /**
   * ...once the hints (each within `interactiveHoldMs` of the one before) number at least
   * `interactivePaceAfterHints` over at least this long, ms: a channel that keeps talking, not
   * the few small writes that end one transfer and open the next (iperf3's control connection:
   * about seven within a few ms, or a few hundred ms apart when transfers follow each other),
   * which would otherwise pace a transfer that runs alone. Default 100 ms.
   */
  interactivePaceAfterMs: number;
  /** See `interactivePaceAfterMs`. Default 16 (a keystroke echo per ms: 16 ms; a typist: 2-3 s). */
  interactivePaceAfterHints: number;
  /**
   * Hard fuse on unacknowledged bytes: beyond it the session fails with ERR_SESSION_LOST. The mux
   * stops at backpressure, so this is never reached by a well-behaved mux. Default 80 MiB
   * (the mux's default 64 MiB session window plus a margin).
   */
  maxReplayBytes: number;
  /**
   * PINGs the peer may send while the connection below does not take our answers (the peer is
   * not reading them). Such PINGs get one PONG once it drains instead of one each; past this
   * many the session ends with ERR_PROTOCOL_FLOOD. Default 1,024 (over an hour of the default
   * liveness pings, which a reading peer never comes near: every drain starts the count over).
   */
  maxPingsUnanswered: number;
  /** How long a resume handshake (RESUME -> RESUMED) may take on a new connection, ms. Default 10 s. */
  resumeTimeoutMs: number;
  /** First reconnect delay ceiling, ms (full jitter, doubling). Default 200 ms. */
  reconnectInitialMs: number;
  /** Largest reconnect delay, ms. Default 5 s. */
  reconnectMaxMs: number;
}

/** The defaults of ResumeConfig. */
export const DEFAULT_RESUME_CONFIG: Readonly<ResumeConfig> = Object.freeze({
  giveUpMs: 120_000,
  ackEveryMessages: 32,
  ackCountMinBytes: 16 * 1024,
  ackEveryBytes: 256 * 1024,
  ackDelayMs: 25,
  livenessIntervalMs: 5_000,
  livenessTimeoutMs: 15_000,
  replayHighWater: 16 * 1024 * 1024,
  inFlightRate: 500_000,
  minInFlight: 2 * 1024 * 1024,
  targetQueueDelayMs: 0,
  initialInFlight: 1024 * 1024,
  interactiveQueueDelayMs: 1,
  interactiveHoldMs: 1_000,
  interactiveBesideBytes: 64 * 1024,
  interactiveMinInFlight: 256 * 1024,
  interactiveAckEveryBytes: 128 * 1024,
  interactivePacePercent: 0,
  interactivePaceAfterMs: 100,
  interactivePaceAfterHints: 16,
  maxReplayBytes: 80 * 1024 * 1024,
  maxPingsUnanswered: 1024,
  resumeTimeoutMs: 10_000,
  reconnectInitialMs: 200,
  reconnectMaxMs: 5_000,
});

/** Settings where 0 means off. */
const OFF_WHEN_ZERO = new Set([
  'ackEveryBytes',
  'ackCountMinBytes',
  'targetQueueDelayMs',
  'interactiveQueueDelayMs',
  'interactivePacePercent',
  'interactivePaceAfterMs',
]);

/** Fills defaults and verifies the result. Throws ERR_CONFIG naming the bad field. */
export function resolveResumeConfig(overrides: Overrides<ResumeConfig> = {}): ResumeConfig {
  const c = withDefaults(DEFAULT_RESUME_CONFIG, overrides);
  for (const [key, value] of Object.entries(c)) {
    const least = OFF_WHEN_ZERO.has(key) ? 0 : 1;
    if (!Number.isSafeInteger(value) || value < least)
      throw new DevstreamsError(
        'ERR_CONFIG',
        `invalid resume config: ${key} must be a ${least === 0 ? 'non-negative' : 'positive'} integer (got ${String(value)})`,
      );
  }
  if (c.livenessTimeoutMs <= c.livenessIntervalMs)
    throw new DevstreamsError('ERR_CONFIG', 'invalid resume config: livenessTimeoutMs must exceed livenessIntervalMs');
  if (c.maxReplayBytes < c.replayHighWater)
    throw new DevstreamsError('ERR_CONFIG', 'invalid resume config: maxReplayBytes must be at least replayHighWater');
  if (c.reconnectMaxMs < c.reconnectInitialMs)
    throw new DevstreamsError('ERR_CONFIG', 'invalid resume config: reconnectMaxMs must be at least reconnectInitialMs');
  return c;
}

/**
 * The resume limits that turn on the delay-based in-flight controller with `targetMs` of
 * queueing delay: its floor low enough to matter (256 KiB) and ACKs every 128 KiB, which the
 * peer's controller needs as delay samples. Both ends should use it (the proxies'
 * `--queue-target-ms`): the sender runs the controller, the receiver acknowledges by bytes.
 */
export function delayControlledResume(targetMs: number): Partial<ResumeConfig> {
  return { targetQueueDelayMs: targetMs, minInFlight: 256 * 1024, ackEveryBytes: 128 * 1024 };
}
