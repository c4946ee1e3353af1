/**
 * Incremental frame decoder. Accepts bytes in arbitrary chunks and never copies DATA: a DATA
 * payload that spans chunks is handed out in pieces (views into each chunk), which is the same
 * byte stream to a channel. Only the small control payloads (at most 4 KiB) and a header split
 * across chunks are assembled. Oversized and unknown frames are rejected from their header,
 * before any payload is buffered.
 */
import { DevstreamsError } from '../errors.js';
import { ByteQueue } from '../util/byte-queue.js';
import { FRAME_TYPE_COUNT, FrameType, HEADER_SIZE } from './constants.js';

/**
 * Receives each decoded frame; `payload` is a view valid until the callback returns. A DATA
 * frame may arrive as several consecutive calls whose payloads add up to the frame's.
 */
export type FrameSink = (type: number, channel: number, payload: Buffer) => void;

/** Cuts frames out of arbitrary chunks and hands each to a callback. */
export class FrameDecoder {
  private readonly header = Buffer.alloc(HEADER_SIZE);
  private headerFill = 0;
  /** Frame whose payload is still arriving. */
  private type = 0;
  private channel = 0;
  private remaining = 0;
  /** Control payload being assembled (DATA is never assembled). */
  private readonly control = new ByteQueue();

  /** @param maxPayload largest payload accepted; larger frames are a protocol error. */
  constructor(private readonly maxPayload: number) {}

  /** Bytes held from an incomplete header or control frame. */
  get buffered(): number {
    return this.headerFill + this.control.length;
  }

  /**
   * Decodes everything in `chunk`, calling `sink` in order. Throws a DevstreamsError with an
   * ERR_PROTOCOL_* code on a bad header; the caller must then end the session, since the
   * stream position is lost.
   */
  push(chunk: Buffer, sink: FrameSink): void {
    const end = chunk.length;
    let at = 0;
    while (at < end) {
      if (this.remaining > 0) {
        const n = Math.min(this.remaining, end - at);
        this.remaining -= n;
        if (this.type === FrameType.DATA) {
          sink(FrameType.DATA, this.channel, chunk.subarray(at, at + n));
        } else {
          this.control.push(chunk.subarray(at, at + n));
          if (this.remaining === 0) sink(this.type, this.channel, this.control.read(this.control.length));
        }
        at += n;
        continue;
      }
      let type: number;
      let channel: number;
      let length: number;
      if (this.headerFill === 0 && end - at >= HEADER_SIZE) {
        type = chunk[at]!;
        channel = chunk.readUInt32BE(at + 2);
        length = chunk.readUInt32BE(at + 6);
        at += HEADER_SIZE;
      } else {
        const n = Math.min(HEADER_SIZE - this.headerFill, end - at);
        chunk.copy(this.header, this.headerFill, at, at + n);
        this.headerFill += n;
        at += n;
        if (this.headerFill < HEADER_SIZE) return;
        this.headerFill = 0;
        type = this.header[0]!;
        channel = this.header.readUInt32BE(2);
        length = this.header.readUInt32BE(6);
      }
      if (type >= FRAME_TYPE_COUNT) throw new DevstreamsError('ERR_PROTOCOL_UNKNOWN_TYPE', `unknown frame type 0x${type.toString(16)}`);
      if (length > this.maxPayload)
        throw new DevstreamsError('ERR_PROTOCOL_FRAME_TOO_LARGE', `frame payload of ${length} bytes exceeds ${this.maxPayload}`);
      if (end - at >= length) {
        // The common case: the whole frame is in this chunk.
        sink(type, channel, length === 0 ? EMPTY : chunk.subarray(at, at + length));
        at += length;
        continue;
      }
      this.type = type;
      this.channel = channel;
      this.remaining = length;
    }
  }
}

const EMPTY = Buffer.alloc(0);
