/**
 * Every limit and timer of the resumable layer, with its default, in one place.
 * `resolveResumeConfig` fills defaults and rejects bad values before a session starts.
 */
import { DevstreamsError } from '../errors.js';
import { withDefaults, type Overrides } from '../util/config.js';

export interface ResumeConfig {
  /**
   * How long a session may stay without a connection before it is given up: channels then end
   * with ERR_SESSION_LOST. Default 120 s (a hub restart or an LTE handover fits well inside).
   */
  giveUpMs: number;
  /** A cumulative ACK goes out at the latest after this many unacknowledged messages. Default 32. */
  ackEveryMessages: number;
  /**
   * ...or after this many unacknowledged bytes of DATA: each ACK is the sender's delay sample,
   * so it should come several times per in-flight bound. Default 128 KiB.
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
   * The most unacknowledged bytes the delay-based controller (delay-controller.ts) ever allows,
   * and the replay buffer's high-water mark. Default 16 MiB: enough for ~1 Gbit/s at 130 ms RTT.
   */
  replayHighWater: number;
  /** Unacknowledged bytes a new connection may have before its first ACK. Default 1 MiB. */
  initialInFlight: number;
  /**
   * The controller never goes below this many unacknowledged bytes (nor below three of the
   * peer's ACK steps, so a peer that acknowledges rarely cannot stall the sender). Default
   * 256 KiB: four full records, enough to keep a three-process pipeline busy on loopback.
   */
  minInFlight: number;
  /**
   * Queueing delay the controller aims at, ms: above it the bound shrinks, below it grows. On
   * long paths a quarter of the base round trip counts instead when larger, so a mobile link's
   * jitter is not taken for a queue. Default 1 ms.
   */
  targetQueueDelayMs: number;
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

export const DEFAULT_RESUME_CONFIG: Readonly<ResumeConfig> = Object.freeze({
  giveUpMs: 120_000,
  ackEveryMessages: 32,
  ackEveryBytes: 128 * 1024,
  ackDelayMs: 25,
  livenessIntervalMs: 5_000,
  livenessTimeoutMs: 15_000,
  replayHighWater: 16 * 1024 * 1024,
  initialInFlight: 1024 * 1024,
  minInFlight: 256 * 1024,
  targetQueueDelayMs: 1,
  maxReplayBytes: 80 * 1024 * 1024,
  maxPingsUnanswered: 1024,
  resumeTimeoutMs: 10_000,
  reconnectInitialMs: 200,
  reconnectMaxMs: 5_000,
});

/** Fills defaults and verifies the result. Throws ERR_CONFIG naming the bad field. */
export function resolveResumeConfig(overrides: Overrides<ResumeConfig> = {}): ResumeConfig {
  const c = withDefaults(DEFAULT_RESUME_CONFIG, overrides);
  for (const [key, value] of Object.entries(c)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new DevstreamsError('ERR_CONFIG', `invalid resume config: ${key} must be a positive integer (got ${String(value)})`);
  }
  if (c.livenessTimeoutMs <= c.livenessIntervalMs) throw new DevstreamsError('ERR_CONFIG', 'invalid resume config: livenessTimeoutMs must exceed livenessIntervalMs');
  if (c.maxReplayBytes < c.replayHighWater) throw new DevstreamsError('ERR_CONFIG', 'invalid resume config: maxReplayBytes must be at least replayHighWater');
  if (c.reconnectMaxMs < c.reconnectInitialMs) throw new DevstreamsError('ERR_CONFIG', 'invalid resume config: reconnectMaxMs must be at least reconnectInitialMs');
  return c;
}
