/**
 * The slice of RFC 6455 that devstreams speaks without `ws` on its hot paths (the hub's stream
 * splice, the SDKs' stream sockets): frame headers, close frames, masking, and an incremental
 * frame reader that hands payload out as views of the socket's own chunks.
 */
import { createRequire } from 'node:module';

/** WebSocket opcodes (RFC 6455 5.2). */
export const OPCODE = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** Close codes devstreams sends on its own account (RFC 6455 7.4.1). */
export const CLOSE = { normal: 1000, goingAway: 1001, protocolError: 1002, tooBig: 1009, internalError: 1011 } as const;

/** Close codes an endpoint may send (RFC 6455 7.4.1 and the IANA registry; 3000-4999 for applications). */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) || (code >= 3000 && code <= 4999);
}

/** Bytes of the header of a frame with a payload of `length`, with or without a masking key. */
function headerLength(length: number, masked: boolean): number {
  return 2 + (length < 126 ? 0 : length < 0x10000 ? 2 : 8) + (masked ? 4 : 0);
}

/** Writes a frame header (see frameHeader) at the start of `into`; returns its length. */
function writeFrameHeader(into: Buffer, fin: boolean, opcode: number, length: number, maskKey?: Buffer): number {
  const maskBit = maskKey ? 0x80 : 0;
  const lengthBytes = length < 126 ? 0 : length < 0x10000 ? 2 : 8;
  into[0] = (fin ? 0x80 : 0) | opcode;
  if (lengthBytes === 0) into[1] = maskBit | length;
  else if (lengthBytes === 2) {
    into[1] = maskBit | 126;
    into.writeUInt16BE(length, 2);
  } else {
    into[1] = maskBit | 127;
    into.writeUInt32BE(Math.floor(length / 0x1_0000_0000), 2);
    into.writeUInt32BE(length >>> 0, 6);
  }
  if (maskKey) maskKey.copy(into, 2 + lengthBytes, 0, 4);
  return 2 + lengthBytes + (maskKey ? 4 : 0);
}

/**
 * A frame header. With `maskKey` the masked bit is set and the key follows (a client's frame);
 * the payload must then be masked with that key by the caller.
 */
export function frameHeader(fin: boolean, opcode: number, length: number, maskKey?: Buffer): Buffer {
  const h = Buffer.allocUnsafe(headerLength(length, maskKey !== undefined));
  writeFrameHeader(h, fin, opcode, length, maskKey);
  return h;
}

/**
 * Turns a client's whole data frame read into `chunk`, whose payload starts at `at` (see
 * FrameReader.wholeDataFrame) and is unmasked, into a server's frame in place: the header without
 * a masking key (always shorter) is written just before the payload. Returns the view of
 * `chunk` that is the new frame.
 */
export function asServerFrame(chunk: Buffer, at: number): Buffer {
  const length = chunk.length - at;
  const start = at - headerLength(length, false);
  const frame = chunk.subarray(start);
  writeFrameHeader(frame, (chunk[0]! & 0x80) !== 0, chunk[0]! & 0x0f, length);
  return frame;
}

/**
 * A whole frame in one buffer: its header, then `parts` (`size` bytes in all) joined. With
 * `maskKey` it is a client's frame and the payload is masked into it (the all-zero key changes
 * no byte, so the parts are copied as they are); the caller's buffers stay as they are.
 */
export function wholeFrame(opcode: number, parts: readonly Buffer[], size: number, maskKey?: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(headerLength(size, maskKey !== undefined) + size);
  const start = writeFrameHeader(frame, true, opcode, size, maskKey);
  const mask = maskKey !== undefined && maskKey.readUInt32BE(0) !== 0 ? maskKey : undefined;
  let at = start;
  for (const part of parts) {
    if (mask) maskInto(part, mask, (at - start) & 3, frame, at);
    else part.copy(frame, at);
    at += part.length;
  }
  return frame;
}

/**
 * A whole control frame (ping, pong, close) carrying `payload`. With `maskKey` it is a client's
 * frame: the payload is masked into the frame, the caller's buffer stays as it is.
 */
export function controlFrame(opcode: number, payload: Buffer, maskKey?: Buffer): Buffer {
  return wholeFrame(opcode, [payload], payload.length, maskKey);
}

/**
 * A whole close frame; the reason is cut to fit a control frame. With `maskKey` it is a
 * client's frame, masked with that key.
 */
export function closeFrame(code: number, reason: string, maskKey?: Buffer): Buffer {
  let text = Buffer.from(reason, 'utf8');
  if (text.length > 123) {
    // Cut on a character boundary: a close reason must be valid UTF-8.
    let end = 123;
    while (end > 0 && (text[end]! & 0xc0) === 0x80) end--;
    text = text.subarray(0, end);
  }
  const payload = Buffer.allocUnsafe(2 + text.length);
  payload.writeUInt16BE(code, 0);
  text.copy(payload, 2);
  return controlFrame(OPCODE.close, payload, maskKey);
}

/** Code and reason of a close frame's payload (1005 when it has none). */
export function parseClosePayload(payload: Buffer): { code: number; reason: string } {
  if (payload.length < 2) return { code: 1005, reason: '' };
  return { code: payload.readUInt16BE(0), reason: payload.subarray(2).toString('utf8') };
}

interface NativeMask {
  mask(source: Buffer, mask: Buffer, output: Buffer, offset: number, length: number): void;
  unmask(buffer: Buffer, mask: Buffer): void;
}
const native: NativeMask | undefined = (() => {
  try {
    return createRequire(import.meta.url)('bufferutil') as NativeMask;
  } catch {
    return undefined;
  }
})();

/**
 * Writes `source` masked with `mask`, starting at byte `phase` of the mask, into `output` at
 * `offset` (a client's payload, masked into a buffer of its own: the caller's stays intact).
 */
export function maskInto(source: Buffer, mask: Buffer, phase: number, output: Buffer, offset: number): void {
  const m = phase === 0 ? mask : rotatedMask(mask, phase);
  if (native) {
    native.mask(source, m, output, offset, source.length);
    return;
  }
  for (let i = 0; i < source.length; i++) output[offset + i] = source[i]! ^ m[i & 3]!;
}

function rotatedMask(mask: Buffer, phase: number): Buffer {
  return Buffer.from([mask[phase % 4]!, mask[(phase + 1) % 4]!, mask[(phase + 2) % 4]!, mask[(phase + 3) % 4]!]);
}

/** XORs `data` in place with `mask`, starting at byte `phase` of the mask. */
function unmaskInPlace(data: Buffer, mask: Buffer, phase: number): void {
  const m = phase === 0 ? mask : rotatedMask(mask, phase);
  if (native) {
    native.unmask(data, m);
    return;
  }
  for (let i = 0; i < data.length; i++) data[i]! ^= m[i & 3]!;
}

/** What the reader hands out, in stream order. */
export interface FrameSink {
  /** A data frame (text, binary or continuation) starts; its payload follows in pieces. */
  dataHeader(fin: boolean, opcode: number, length: number): void;
  /** A piece of the current data frame's payload, unmasked (a view of the socket's chunk). */
  dataPiece(piece: Buffer): void;
  /** A whole control frame (ping, pong or close), unmasked. */
  control(opcode: number, payload: Buffer): void;
  /** The stream broke the protocol; nothing more is read. */
  violation(code: number, message: string): void;
}

const MAX_HEADER = 14;

/**
 * Which end reads: a server reads a client's frames, which must be masked (RFC 6455 5.1); a
 * client reads a server's, which must not be.
 */
export type FrameReaderRole = 'server' | 'client';

/** What a FrameReader reads next (as ws's receiver has GET_INFO ... GET_DATA). */
export const ReadState = {
  /** A frame header, gathered across chunks if need be. */
  Header: 0,
  /** The payload of a data frame, handed on piece by piece. */
  DataPayload: 1,
  /** The payload of a control frame, gathered whole. */
  ControlPayload: 2,
  /** The stream broke the protocol; nothing more is read. */
  Failed: 3,
} as const;
/** One of the ReadState values. */
export type ReadState = (typeof ReadState)[keyof typeof ReadState];

/**
 * Incremental frame reader. Payload is never copied (a masked payload is unmasked in place: the
 * chunks are the reader's to change, a fresh buffer per read or a shared read buffer whose bytes
 * are consumed before the next read, see `keepAcrossReads`); only a header or a control frame
 * split across chunks is gathered.
 */
export class FrameReader {
  private readonly header = Buffer.allocUnsafe(MAX_HEADER);
  private headerHave = 0;
  private state: ReadState = ReadState.Header;
  /** Payload bytes still to come for the current frame. */
  private remaining = 0;
  private opcode = 0;
  private maskKey = Buffer.alloc(4);
  private masked = false;
  private maskPhase = 0;
  private controlParts: Buffer[] = [];
  /** Inside a fragmented message: the next data frame must be a continuation. */
  private fragmented = false;

  constructor(
    private readonly sink: FrameSink,
    private readonly maxFramePayload: number,
    private readonly role: FrameReaderRole = 'server',
  ) {}

  push(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && this.state !== ReadState.Failed) {
      if (this.state === ReadState.Header) {
        at = this.readHeader(chunk, at);
        continue;
      }
      const n = Math.min(this.remaining, chunk.length - at);
      const piece = chunk.subarray(at, at + n);
      at += n;
      this.remaining -= n;
      if (this.masked && n > 0) {
        unmaskInPlace(piece, this.maskKey, this.maskPhase);
        this.maskPhase = (this.maskPhase + n) & 3;
      }
      if (this.state === ReadState.ControlPayload) {
        if (n > 0) this.controlParts.push(piece);
        if (this.remaining === 0) this.endControl();
      } else {
        if (n > 0) this.sink.dataPiece(piece);
        if (this.remaining === 0) this.state = ReadState.Header;
      }
    }
  }

  /** Reads header bytes from `chunk` at `at`; returns where reading stopped. */
  private readHeader(chunk: Buffer, at: number): number {
    // Gather up to the longest header; the real length is known after two bytes.
    const need = this.headerHave < 2 ? 2 : this.headerLength();
    const take = Math.min(need - this.headerHave, chunk.length - at);
    chunk.copy(this.header, this.headerHave, at, at + take);
    this.headerHave += take;
    at += take;
    if (this.headerHave < need) return at;
    if (need === 2 && this.headerLength() > 2) return at; // now we know how many more to read
    this.startFrame();
    return at;
  }

  private headerLength(): number {
    const len7 = this.header[1]! & 0x7f;
    return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (this.header[1]! & 0x80 ? 4 : 0);
  }

  private startFrame(): void {
    const h = this.header;
    const fin = (h[0]! & 0x80) !== 0;
    const opcode = h[0]! & 0x0f;
    const len7 = h[1]! & 0x7f;
    this.masked = (h[1]! & 0x80) !== 0;
    let at = 2;
    let length = len7;
    if (len7 === 126) {
      length = h.readUInt16BE(2);
      at = 4;
    } else if (len7 === 127) {
      const hi = h.readUInt32BE(2);
      if (hi > 0x1fffff) return this.fail(CLOSE.tooBig, 'frame length out of range');
      length = hi * 0x1_0000_0000 + h.readUInt32BE(6);
      at = 10;
    }
    this.headerHave = 0;
    if ((h[0]! & 0x70) !== 0) return this.fail(CLOSE.protocolError, 'reserved bits set (no extension was negotiated)');
    if (this.role === 'server' && !this.masked) return this.fail(CLOSE.protocolError, 'client frames must be masked');
    if (this.role === 'client' && this.masked) return this.fail(CLOSE.protocolError, 'server frames must not be masked');
    const isControl = opcode >= 0x8;
    if (isControl ? opcode > OPCODE.pong : opcode > OPCODE.binary) return this.fail(CLOSE.protocolError, `unknown opcode ${opcode}`);
    if (isControl && (!fin || length > 125)) return this.fail(CLOSE.protocolError, 'control frames must be whole and at most 125 bytes');
    if (length > this.maxFramePayload)
      return this.fail(CLOSE.tooBig, `frame of ${length} bytes exceeds the relay limit of ${this.maxFramePayload}`);
    if (this.masked) {
      h.copy(this.maskKey, 0, at, at + 4);
      // An all-zero key (what devstreams uses for sealed records) leaves the payload as it is.
      if (this.maskKey.readUInt32BE(0) === 0) this.masked = false;
    }
    this.maskPhase = 0;
    this.opcode = opcode;
    this.remaining = length;
    if (!isControl) {
      if (opcode === OPCODE.continuation && !this.fragmented)
        return this.fail(CLOSE.protocolError, 'continuation frame outside a fragmented message');
      if (opcode !== OPCODE.continuation && this.fragmented) return this.fail(CLOSE.protocolError, 'new message inside a fragmented one');
      this.fragmented = !fin;
    }
    if (isControl) {
      this.controlParts = [];
      this.state = ReadState.ControlPayload;
      if (length === 0) this.endControl();
    } else {
      this.state = length === 0 ? ReadState.Header : ReadState.DataPayload;
      this.sink.dataHeader(fin, opcode, length);
    }
  }

  /**
   * Reads `chunk` when it is exactly one whole data frame that ends a message (FIN, binary or
   * text, no extension bits, masked as this role requires, within the payload limit) and the
   * reader is between frames and messages: unmasks the payload in place and returns where it
   * starts in `chunk`, without telling the sink; the caller passes the frame on itself. Otherwise
   * returns -1 having read nothing: push() the chunk as usual (it reports any violation). A
   * relay's short cut for the usual small message, one per socket read.
   */
  wholeDataFrame(chunk: Buffer): number {
    if (this.state !== ReadState.Header || this.headerHave !== 0 || this.fragmented || chunk.length < 2) return -1;
    const b0 = chunk[0]!;
    const b1 = chunk[1]!;
    const opcode = b0 & 0x0f;
    if ((b0 & 0xf0) !== 0x80 || (opcode !== OPCODE.binary && opcode !== OPCODE.text)) return -1;
    const masked = (b1 & 0x80) !== 0;
    if (masked !== (this.role === 'server')) return -1;
    const len7 = b1 & 0x7f;
    if (len7 === 127) return -1;
    const at = (len7 === 126 ? 4 : 2) + (masked ? 4 : 0);
    if (chunk.length < at) return -1;
    const length = len7 === 126 ? chunk.readUInt16BE(2) : len7;
    if (chunk.length !== at + length || length > this.maxFramePayload) return -1;
    if (masked && length > 0 && chunk.readUInt32BE(at - 4) !== 0) unmaskInPlace(chunk.subarray(at), chunk.subarray(at - 4, at), 0);
    return at;
  }

  /**
   * The chunks pushed so far were views of a buffer the next read overwrites: copies the part of
   * a control frame still being gathered from them (data pieces are the sink's to keep or copy).
   */
  keepAcrossReads(reused: ArrayBufferLike): void {
    for (let i = 0; i < this.controlParts.length; i++) {
      const part = this.controlParts[i]!;
      if (part.buffer === reused) this.controlParts[i] = Buffer.from(part);
    }
  }

  private endControl(): void {
    const parts = this.controlParts;
    this.controlParts = [];
    this.state = ReadState.Header;
    this.sink.control(this.opcode, parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  }

  private fail(code: number, message: string): void {
    this.state = ReadState.Failed;
    this.sink.violation(code, message);
  }
}
