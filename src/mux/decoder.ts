/**
 * Incremental frame decoder. Accepts bytes in arbitrary chunks; a frame that lies inside one
 * chunk is handed out as a view (no copy), only a frame split across chunks is assembled.
 * Rejects oversized and unknown frames before buffering their payload.
 */
import { DevstreamsError } from '../errors.js';
import { ByteQueue } from '../util/byte-queue.js';
import { FRAME_TYPE_COUNT, HEADER_SIZE } from './constants.js';
import type { Frame } from './frame.js';

export class FrameDecoder {
  private readonly pending = new ByteQueue();

  /** @param maxPayload largest payload accepted; larger frames are a protocol error. */
  constructor(private readonly maxPayload: number) {}

  /** Bytes held from an incomplete frame. */
  get buffered(): number {
    return this.pending.length;
  }

  /**
   * Decodes every complete frame in `chunk` (after what was held) and calls `onFrame` for each,
   * in order. Throws a DevstreamsError with an ERR_PROTOCOL_* code on a bad header; the caller
   * must then end the session, since the stream position is lost.
   */
  push(chunk: Buffer, onFrame: (frame: Frame) => void): void {
    if (this.pending.length === 0) {
      const used = this.decodeWhole(chunk, onFrame);
      if (used < chunk.length) this.pending.push(chunk.subarray(used));
      return;
    }
    this.pending.push(chunk);
    const q = this.pending;
    while (q.length >= HEADER_SIZE) {
      const type = q.peekUInt8(0);
      const length = q.peekUInt32BE(6);
      this.check(type, length);
      if (q.length < HEADER_SIZE + length) return;
      const header = q.read(HEADER_SIZE);
      const payload = length === 0 ? EMPTY : q.read(length);
      onFrame({ type, flags: header[1]!, channel: header.readUInt32BE(2), payload });
    }
  }

  /** Fast path for a chunk with nothing held before it: frames are views into the chunk. */
  private decodeWhole(chunk: Buffer, onFrame: (frame: Frame) => void): number {
    let at = 0;
    while (chunk.length - at >= HEADER_SIZE) {
      const type = chunk[at]!;
      const length = chunk.readUInt32BE(at + 6);
      this.check(type, length);
      const end = at + HEADER_SIZE + length;
      if (end > chunk.length) break;
      onFrame({ type, flags: chunk[at + 1]!, channel: chunk.readUInt32BE(at + 2), payload: chunk.subarray(at + HEADER_SIZE, end) });
      at = end;
    }
    return at;
  }

  private check(type: number, length: number): void {
    if (type >= FRAME_TYPE_COUNT) throw new DevstreamsError('ERR_PROTOCOL_UNKNOWN_TYPE', `unknown frame type 0x${type.toString(16)}`);
    if (length > this.maxPayload) throw new DevstreamsError('ERR_PROTOCOL_FRAME_TOO_LARGE', `frame payload of ${length} bytes exceeds ${this.maxPayload}`);
  }
}

const EMPTY = Buffer.alloc(0);
