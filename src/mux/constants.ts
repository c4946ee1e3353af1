/**
 * Wire constants of the mux: frame header layout, frame types, reset codes. docs/PROTOCOL.md is
 * the normative text; this file must agree with it.
 */
import type { ErrorCode } from '../errors.js';

/** Protocol version carried in HELLO. */
export const PROTOCOL_VERSION = 1;

/** type u8 | flags u8 | channel u32 | length u32, big-endian. */
export const HEADER_SIZE = 10;

/** Every channel starts with this much credit in each direction, before any WINDOW frame. */
export const INITIAL_WINDOW = 256 * 1024;

/** Session credit a peer may assume before the other side's HELLO arrives. */
export const INITIAL_SESSION_WINDOW = 1024 * 1024;

/** Largest payload the protocol allows in one frame, whatever the configuration. */
export const MAX_FRAME_PAYLOAD_LIMIT = 64 * 1024;

/** Largest reset reason text carried on the wire, in bytes. */
export const MAX_RESET_REASON = 1024;

/** Largest structured (msgpack) payload: OPEN, HELLO, GOAWAY. */
export const MAX_CONTROL_PAYLOAD = 4096;

/** Frame types on the wire (docs/PROTOCOL.md, "Frame types"). */
export const FrameType = {
  HELLO: 0x0,
  OPEN: 0x1,
  ACCEPT: 0x2,
  DATA: 0x3,
  WINDOW: 0x4,
  CLOSE: 0x5,
  RESET: 0x6,
  PING: 0x7,
  PONG: 0x8,
  GOAWAY: 0x9,
} as const;
/** One of the FrameType values. */
export type FrameType = (typeof FrameType)[keyof typeof FrameType];
/** Number of frame types; the decoder rejects any type at or above it. */
export const FRAME_TYPE_COUNT = 10;

/** Frame type names by type, for errors and logs. */
export const FRAME_TYPE_NAMES: readonly string[] = [
  'HELLO',
  'OPEN',
  'ACCEPT',
  'DATA',
  'WINDOW',
  'CLOSE',
  'RESET',
  'PING',
  'PONG',
  'GOAWAY',
];

/**
 * Reset and GOAWAY codes on the wire (u16), and the error code each surfaces as. Unknown wire
 * codes surface as ERR_CHANNEL_RESET so that a newer peer never breaks an older one.
 */
export const WIRE_CODES: ReadonlyArray<readonly [number, ErrorCode]> = [
  [0, 'ERR_SESSION_CLOSED'], // GOAWAY: normal shutdown
  [1, 'ERR_CHANNEL_RESET'],
  [2, 'ERR_TARGET_NOT_ALLOWED'],
  [3, 'ERR_TARGET_UNREACHABLE'],
  [4, 'ERR_TARGET_REFUSED'],
  [5, 'ERR_TOO_MANY_CHANNELS'],
  [6, 'ERR_OPEN_TIMEOUT'],
  [7, 'ERR_SESSION_GOAWAY'],
  [8, 'ERR_INTERNAL'],
  [9, 'ERR_SESSION_LOST'],
  [10, 'ERR_KEEPALIVE_TIMEOUT'],
  [16, 'ERR_PROTOCOL_FRAME'],
  [17, 'ERR_PROTOCOL_FRAME_TOO_LARGE'],
  [18, 'ERR_PROTOCOL_UNKNOWN_TYPE'],
  [19, 'ERR_PROTOCOL_VERSION'],
  [20, 'ERR_PROTOCOL_CHANNEL'],
  [21, 'ERR_PROTOCOL_FLOW_CONTROL'],
  [22, 'ERR_PROTOCOL_STATE'],
  [23, 'ERR_PROTOCOL_FLOOD'],
];

const byWire = new Map<number, ErrorCode>(WIRE_CODES);
const byCode = new Map<ErrorCode, number>(WIRE_CODES.map(([w, c]) => [c, w]));

/** The error code a wire code surfaces as. */
export function codeFromWire(wire: number): ErrorCode {
  return byWire.get(wire) ?? 'ERR_CHANNEL_RESET';
}

/** The wire code for an error code; codes with no wire form travel as a generic reset (1). */
export function wireFromCode(code: ErrorCode): number {
  return byCode.get(code) ?? 1;
}
