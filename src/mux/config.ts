/**
 * Every mux limit and timer, with its default, in one place. `resolveMuxConfig` fills defaults
 * and rejects bad values before a session starts, so a misconfiguration fails loudly at
 * construction rather than as a stall later.
 */
import { DevstreamsError } from '../errors.js';
import { withDefaults, type Overrides } from '../util/config.js';
import { INITIAL_SESSION_WINDOW, INITIAL_WINDOW, MAX_FRAME_PAYLOAD_LIMIT } from './constants.js';

/** Every limit and timer of a mux session. */
export interface MuxConfig {
  /** Largest DATA payload this side sends and accepts. Default 64 KiB, at most 64 KiB. */
  maxFramePayload: number;
  /** Bytes one channel may send in one scheduler turn before the next channel's turn. Default 16 KiB. */
  schedulerSlice: number;
  /**
   * Largest transport message (a batch of frames) this side builds. Default 64 KiB + 512 B, so a
   * full 64 KiB DATA frame and its header (and small control frames) leave in one message: with
   * exactly 64 KiB every 64 KiB write would split into a frame and a 10-byte straggler. Clamped
   * to the transport's `maxMessageSize`.
   */
  maxBatchBytes: number;
  /** Per-channel receive window ceiling that auto-tuning grows toward. Default 16 MiB. */
  maxWindow: number;
  /** Receive budget shared by all channels of the session. Default 64 MiB. */
  sessionWindow: number;
  /** Channels open at once, inbound and outbound counted separately. Default 1,024. */
  maxChannels: number;
  /** How long an opener waits for ACCEPT before resetting with ERR_OPEN_TIMEOUT. Default 30 s. */
  openTimeoutMs: number;
  /** Interval between keepalive pings; 0 disables keepalive. Default 15 s. */
  keepaliveIntervalMs: number;
  /** How long a ping may go unanswered before the session ends with ERR_KEEPALIVE_TIMEOUT. Default 10 s. */
  keepaliveTimeoutMs: number;
  /** Bytes a channel's writer may queue in the mux beyond the Writable's own buffer. Default 256 KiB. */
  channelSendBuffer: number;
  /** How long goAway() waits for channels to finish before resetting them. Default 30 s. */
  goAwayTimeoutMs: number;
  /**
   * Bytes of control frames (pongs, resets, grants) this side may hold while the transport does
   * not take them, each frame counted with `CONTROL_FRAME_COST` bytes of bookkeeping. The peer
   * decides how many answers it provokes (a PING, DATA or OPEN for a channel that is not there);
   * one that provokes more than this while not reading them ends the session with
   * ERR_PROTOCOL_FLOOD. Default 1 MiB.
   */
  maxControlBacklog: number;
  /**
   * Bytes of light frames that may go out while the transport reports backpressure, between two
   * of its drains: control frames, and DATA (with its CLOSE) of channels that have at most
   * `LIGHT_CHANNEL_PENDING` bytes queued, taken whole. Under a bulk transfer the transport below
   * is blocked most of the time, until an acknowledgement frees room; an interactive channel's
   * keystroke then waits only behind what is already on the path, not for that acknowledgement
   * as well. 0 turns the lane off. Default 64 KiB.
   */
  lightLaneBytes: number;
  /**
   * Turns of the event loop a flush that would carry nothing but CLOSE frames waits (each a
   * setImmediate: a poll that does not block, then the flush), so that the CLOSE rides in the
   * record of whatever the next turns send instead of being sealed, written, relayed and opened
   * on its own. With connections opened one after another, one's CLOSE then goes with the next
   * one's OPEN and the other way with its ACCEPT and first answer, one record each way fewer
   * per connection, and the end of one connection is no longer written ahead of the start of
   * the next. Anything else to send (data, control frames) ends the wait. 0 sends at once.
   * Default 1 (2 and 3 saved no more records in the measured runs).
   */
  closeHoldTurns: number;
}

/** The defaults of MuxConfig. */
export const DEFAULT_MUX_CONFIG: Readonly<MuxConfig> = Object.freeze({
  maxFramePayload: MAX_FRAME_PAYLOAD_LIMIT,
  schedulerSlice: 16 * 1024,
  maxBatchBytes: 64 * 1024 + 512,
  maxWindow: 16 * 1024 * 1024,
  sessionWindow: 64 * 1024 * 1024,
  maxChannels: 1024,
  openTimeoutMs: 30_000,
  keepaliveIntervalMs: 15_000,
  keepaliveTimeoutMs: 10_000,
  channelSendBuffer: 256 * 1024,
  goAwayTimeoutMs: 30_000,
  maxControlBacklog: 1024 * 1024,
  lightLaneBytes: 64 * 1024,
  closeHoldTurns: 1,
});

/** A channel with at most this many bytes queued counts as light (see `lightLaneBytes`). */
export const LIGHT_CHANNEL_PENDING = 4096;

/** What one queued control frame costs beyond its bytes (the Buffer object, the queue slot). */
export const CONTROL_FRAME_COST = 64;

function check(ok: boolean, what: string): void {
  if (!ok) throw new DevstreamsError('ERR_CONFIG', `invalid mux config: ${what}`);
}

/** Fills defaults and verifies the result. Throws ERR_CONFIG naming the bad field. */
export function resolveMuxConfig(overrides: Overrides<MuxConfig> = {}): MuxConfig {
  const c = withDefaults(DEFAULT_MUX_CONFIG, overrides);
  for (const [key, value] of Object.entries(c)) {
    check(Number.isSafeInteger(value) && value >= 0, `${key} must be a non-negative integer (got ${String(value)})`);
  }
  check(c.maxFramePayload >= 1024 && c.maxFramePayload <= MAX_FRAME_PAYLOAD_LIMIT, `maxFramePayload must be 1 KiB..64 KiB`);
  check(c.schedulerSlice >= 512 && c.schedulerSlice <= c.maxFramePayload, 'schedulerSlice must be 512 B..maxFramePayload');
  check(c.maxBatchBytes >= c.schedulerSlice, 'maxBatchBytes must be at least schedulerSlice');
  check(c.maxWindow >= INITIAL_WINDOW && c.maxWindow <= 0x7fffffff, `maxWindow must be ${INITIAL_WINDOW}..2^31-1`);
  check(
    c.sessionWindow >= INITIAL_SESSION_WINDOW && c.sessionWindow <= 0x7fffffff,
    `sessionWindow must be ${INITIAL_SESSION_WINDOW}..2^31-1`,
  );
  check(c.maxChannels >= 1 && c.maxChannels <= 1_000_000, 'maxChannels must be 1..1,000,000');
  check(c.openTimeoutMs >= 1, 'openTimeoutMs must be positive');
  check(c.keepaliveIntervalMs === 0 || c.keepaliveTimeoutMs >= 1, 'keepaliveTimeoutMs must be positive when keepalive is on');
  check(c.channelSendBuffer >= 1024, 'channelSendBuffer must be at least 1 KiB');
  check(c.goAwayTimeoutMs >= 1, 'goAwayTimeoutMs must be positive');
  check(c.maxControlBacklog >= 16 * 1024, 'maxControlBacklog must be at least 16 KiB');
  check(c.closeHoldTurns <= 16, 'closeHoldTurns must be 0..16');
  return c;
}
