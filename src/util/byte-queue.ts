/**
 * A queue of received chunks that decoders read from without concatenating on every chunk:
 * a read that lies inside one chunk returns a view; only a read that spans chunks copies.
 */
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
    return ((this.peekUInt8(index) << 24) | (this.peekUInt8(index + 1) << 16) | (this.peekUInt8(index + 2) << 8) | this.peekUInt8(index + 3)) >>> 0;
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
    const out = Buffer.allocUnsafe(n);
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
