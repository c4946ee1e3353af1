/**
 * Frame header codec and the encoders for each frame type. Hot frames (DATA, WINDOW, PING) are a
 * fixed binary header plus raw payload; rare structured payloads (HELLO, OPEN, GOAWAY) are msgpack.
 */
import { pack, unpack } from 'msgpackr';
import { DevstreamsError } from '../errors.js';
import { FrameType, HEADER_SIZE, MAX_CONTROL_PAYLOAD, MAX_RESET_REASON } from './constants.js';

/** Where a channel should connect on the accepting side. */
export interface ChannelTarget {
  host: string;
  port: number;
  /** Optional service name (e.g. "ssh") the accepting side may use instead of host:port. */
  service?: string;
}

/** What a HELLO advertises. */
export interface HelloPayload {
  version: number;
  /** The sender's per-channel receive window at channel start. */
  initialWindow: number;
  /** The sender's session receive window. */
  sessionWindow: number;
  /** Largest DATA payload the sender accepts. */
  maxFramePayload: number;
}

/** Why a GOAWAY ends the session: a wire code (0: orderly) and a message. */
export interface GoAwayPayload {
  code: number;
  message: string;
}

/** Writes a frame header at `offset`. */
export function writeHeader(buf: Buffer, offset: number, type: number, channel: number, length: number): void {
  buf[offset] = type;
  buf[offset + 1] = 0;
  buf.writeUInt32BE(channel, offset + 2);
  buf.writeUInt32BE(length, offset + 6);
}

/** One frame as a single buffer (header then payload). For control frames; DATA avoids the copy. */
export function encodeFrame(type: number, channel: number, payload?: Buffer): Buffer {
  const length = payload ? payload.length : 0;
  const buf = Buffer.allocUnsafe(HEADER_SIZE + length);
  writeHeader(buf, 0, type, channel, length);
  if (payload) payload.copy(buf, HEADER_SIZE);
  return buf;
}

/** A WINDOW frame granting `increment` bytes of credit. */
export function encodeWindow(channel: number, increment: number): Buffer {
  const buf = Buffer.allocUnsafe(HEADER_SIZE + 4);
  writeHeader(buf, 0, FrameType.WINDOW, channel, 4);
  buf.writeUInt32BE(increment, HEADER_SIZE);
  return buf;
}

/** A PING or PONG frame with its 8-byte opaque payload. */
export function encodePing(type: typeof FrameType.PING | typeof FrameType.PONG, opaque: Buffer): Buffer {
  return encodeFrame(type, 0, opaque);
}

/** A RESET frame with its wire code and a reason. */
export function encodeReset(channel: number, wireCode: number, reason: string): Buffer {
  const text = Buffer.from(reason, 'utf8').subarray(0, MAX_RESET_REASON);
  const payload = Buffer.allocUnsafe(2 + text.length);
  payload.writeUInt16BE(wireCode, 0);
  text.copy(payload, 2);
  return encodeFrame(FrameType.RESET, channel, payload);
}

/** Reads a RESET payload. */
export function decodeReset(payload: Buffer): { wireCode: number; reason: string } {
  if (payload.length < 2 || payload.length > 2 + MAX_RESET_REASON) throw frameError('RESET payload must be 2..1026 bytes');
  return { wireCode: payload.readUInt16BE(0), reason: payload.toString('utf8', 2) };
}

/** A frame whose payload is msgpack (HELLO, OPEN, GOAWAY). */
export function encodeStructured(type: number, channel: number, value: object): Buffer {
  const body = pack(value) as Buffer;
  return encodeFrame(type, channel, body);
}

/**
 * How many distinct OPEN payloads each side keeps, packed (opener) and checked (accepter). A
 * proxy opens the same few targets over and over (one per --forward), and msgpack is the largest
 * piece of JavaScript in a channel's OPEN while the code runs cold; the same bytes always give
 * the same target, so a payload seen before is not packed or unpacked again. Bounded because the
 * accepting side's payloads come from the peer: at the bound the cache starts again empty.
 */
export const OPEN_CACHE_ENTRIES = 64;

const packedOpens = new Map<string, Buffer>();
const checkedOpens = new Map<string, ChannelTarget>();

/** An OPEN frame asking for `target` (host, port, then service when given: the msgpack map's order). */
export function encodeOpen(channel: number, target: ChannelTarget): Buffer {
  // The host's length makes the key unambiguous whatever characters host and service hold.
  const tail = target.service === undefined ? '' : `/${target.service}`;
  const key = `${target.port}:${target.host.length}:${target.host}${tail}`;
  let body = packedOpens.get(key);
  if (body === undefined) {
    const meta: Record<string, unknown> = { host: target.host, port: target.port };
    if (target.service !== undefined) meta.service = target.service;
    body = pack(meta) as Buffer;
    if (packedOpens.size >= OPEN_CACHE_ENTRIES) packedOpens.clear();
    packedOpens.set(key, body);
  }
  return encodeFrame(FrameType.OPEN, channel, body);
}

/** Unpacks a msgpack control payload to a plain object, or throws ERR_PROTOCOL_FRAME. */
function unpackObject(payload: Buffer, what: string): Record<string, unknown> {
  if (payload.length > MAX_CONTROL_PAYLOAD) throw frameError(`${what} payload exceeds ${MAX_CONTROL_PAYLOAD} bytes`);
  let value: unknown;
  try {
    value = unpack(payload);
  } catch {
    throw frameError(`${what} payload is not valid msgpack`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw frameError(`${what} payload must be a map`);
  return value as Record<string, unknown>;
}

function isUInt(v: unknown, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
}

/** Reads and checks a HELLO payload. */
export function decodeHello(payload: Buffer): HelloPayload {
  const o = unpackObject(payload, 'HELLO');
  const { version, initialWindow, sessionWindow, maxFramePayload } = o;
  if (
    !isUInt(version, 0xffff) ||
    !isUInt(initialWindow, 0x7fffffff) ||
    !isUInt(sessionWindow, 0x7fffffff) ||
    !isUInt(maxFramePayload, 0x7fffffff)
  ) {
    throw frameError('HELLO fields missing or out of range');
  }
  return { version, initialWindow, sessionWindow, maxFramePayload };
}

/** Reads and checks an OPEN payload: the target the opener asks for (a new object each time). */
export function decodeOpen(payload: Buffer): ChannelTarget {
  // latin1 maps each byte to one character, so equal keys are equal payloads.
  const key = payload.length <= MAX_CONTROL_PAYLOAD ? payload.toString('latin1') : undefined;
  let target = key === undefined ? undefined : checkedOpens.get(key);
  if (target === undefined) {
    target = checkOpen(payload);
    if (key !== undefined) {
      if (checkedOpens.size >= OPEN_CACHE_ENTRIES) checkedOpens.clear();
      checkedOpens.set(key, target);
    }
  }
  const { host, port, service } = target;
  return service === undefined ? { host, port } : { host, port, service };
}

function checkOpen(payload: Buffer): ChannelTarget {
  const o = unpackObject(payload, 'OPEN');
  const { host, port, service } = o;
  if (typeof host !== 'string' || host.length === 0 || host.length > 255)
    throw frameError('OPEN host must be a string of 1..255 characters');
  if (!isUInt(port, 65535)) throw frameError('OPEN port must be 0..65535');
  if (service !== undefined && (typeof service !== 'string' || service.length > 64))
    throw frameError('OPEN service must be a string of at most 64 characters');
  return service === undefined ? { host, port } : { host, port, service };
}

/** Reads and checks a GOAWAY payload. */
export function decodeGoAway(payload: Buffer): GoAwayPayload {
  const o = unpackObject(payload, 'GOAWAY');
  const { code, message } = o;
  if (!isUInt(code, 0xffff)) throw frameError('GOAWAY code must be a u16');
  return { code, message: typeof message === 'string' ? message.slice(0, MAX_RESET_REASON) : '' };
}

/** An ERR_PROTOCOL_FRAME error. */
export function frameError(message: string): DevstreamsError {
  return new DevstreamsError('ERR_PROTOCOL_FRAME', message);
}
