/**
 * A queue of received chunks that decoders read from without concatenating on every chunk:
 * a read that lies inside one chunk returns a view; only a read that spans chunks copies, into
 * a slab shared by many such reads, so 64 KiB messages do not each cost a fresh allocation
 * (and the garbage collection that follows).
 */

/** Slab size for spanning reads; reads larger than a quarter of it get their own buffer. */
const SLAB_SIZE = 1024 * 1024;
let slab = Buffer.allocUnsafe(0);
let slabOffset = 0;

function allocFromSlab(n: number): Buffer {
  if (n > SLAB_SIZE / 4) return Buffer.allocUnsafe(n);
  if (slab.length - slabOffset < n) {
    slab = Buffer.allocUnsafe(SLAB_SIZE);
    slabOffset = 0;
  }
  const out = slab.subarray(slabOffset, slabOffset + n);
  // Keep the next region 8-byte aligned for typed-array views.
  slabOffset += (n + 7) & ~7;
  return out;
}
/** Received chunks read as one byte stream; only a read that spans chunks copies. */
export class ByteQueue {
  private chunks: Buffer[] = [];
  private head = 0; // index of the first live chunk
  private offset = 0; // bytes already consumed from chunks[head]
  private total = 0;

  /** Bytes available to read. */
  get length(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** Reads the byte at `index` from the front without consuming it. */
  peekUInt8(index: number): number {
    let i = this.head;
    let at = this.offset + index;
    for (;;) {
      const chunk = this.chunks[i]!;
      if (at < chunk.length) return chunk[at]!;
      at -= chunk.length;
      i++;
    }
  }

  /** Big-endian u32 at `index` from the front, without consuming. */
  peekUInt32BE(index: number): number {
    const chunk = this.chunks[this.head]!;
    const at = this.offset + index;
    if (at + 4 <= chunk.length) return chunk.readUInt32BE(at);
    return (
      ((this.peekUInt8(index) << 24) | (this.peekUInt8(index + 1) << 16) | (this.peekUInt8(index + 2) << 8) | this.peekUInt8(index + 3)) >>>
      0
    );
  }

  /** Consumes `n` bytes (n <= length) and returns them: a view when they lie in one chunk. */
  read(n: number): Buffer {
    if (n > this.total) throw new RangeError(`read(${n}) beyond ${this.total} queued bytes`);
    this.total -= n;
    const first = this.chunks[this.head]!;
    if (this.offset + n <= first.length) {
      const view = first.subarray(this.offset, this.offset + n);
      this.advance(first, n);
      return view;
    }
    const out = allocFromSlab(n);
    let written = 0;
    while (written < n) {
      const chunk = this.chunks[this.head]!;
      const take = Math.min(n - written, chunk.length - this.offset);
      chunk.copy(out, written, this.offset, this.offset + take);
      written += take;
      this.advance(chunk, take);
    }
    return out;
  }

  /** Consumes `n` bytes (n <= length) as views, one per chunk they span: never copies. */
  readParts(n: number): Buffer[] {
    if (n > this.total) throw new RangeError(`readParts(${n}) beyond ${this.total} queued bytes`);
    this.total -= n;
    const parts: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const chunk = this.chunks[this.head]!;
      const take = Math.min(left, chunk.length - this.offset);
      parts.push(chunk.subarray(this.offset, this.offset + take));
      left -= take;
      this.advance(chunk, take);
    }
    return parts;
  }

  /** True when the next `n` bytes lie inside one chunk (a read would return a view). */
  isContiguous(n: number): boolean {
    const first = this.chunks[this.head];
    return first !== undefined && this.offset + n <= first.length;
  }

  /** Drops `n` bytes from the front. */
  skip(n: number): void {
    this.read(n);
  }

  private advance(chunk: Buffer, n: number): void {
    this.offset += n;
    if (this.offset === chunk.length) {
      this.offset = 0;
      this.head++;
      // Compact occasionally so the array does not grow without bound.
      if (this.head > 64 && this.head * 2 > this.chunks.length) {
        this.chunks = this.chunks.slice(this.head);
        this.head = 0;
      } else if (this.head === this.chunks.length) {
        this.chunks.length = 0;
        this.head = 0;
      }
    }
  }
}
