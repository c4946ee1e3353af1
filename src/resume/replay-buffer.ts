/**
 * The sender's copy of every numbered message the peer has not acknowledged, oldest first.
 * Entries hold the caller's buffers (no copy); an ACK drops everything below its count.
 */

interface Entry {
  parts: Buffer[];
  size: number;
  /** When it was (last) handed to a link, ms (performance.now()): the ACK's round-trip sample. */
  sentAt: number;
}

/** Sent messages the peer has not acknowledged, in order, for resending. */
export class ReplayBuffer {
  private entries: Entry[] = [];
  private head = 0;
  /** Number (0-based) of the oldest entry held: everything below it was acknowledged. */
  private base = 0;
  private byteCount = 0;

  get bytes(): number {
    return this.byteCount;
  }

  /** Messages held. */
  get length(): number {
    return this.entries.length - this.head;
  }

  /** Count of messages acknowledged so far (the number of the oldest held). */
  get acknowledged(): number {
    return this.base;
  }

  /** Count of messages ever pushed. */
  get sent(): number {
    return this.base + this.length;
  }

  push(parts: Buffer[], size: number, sentAt: number): void {
    this.entries.push({ parts, size, sentAt });
    this.byteCount += size;
  }

  /** When message number `n` (held: acknowledged <= n < sent) was sent, ms. */
  sentAtOf(n: number): number {
    return this.entries[this.head + n - this.base]!.sentAt;
  }

  /** Drops entries numbered below `count`. The caller has checked acknowledged <= count <= sent. */
  ackTo(count: number): void {
    while (this.base < count) {
      const e = this.entries[this.head]!;
      this.entries[this.head] = undefined as unknown as Entry;
      this.head++;
      this.base++;
      this.byteCount -= e.size;
    }
    // Compact now and then so the array does not grow without bound.
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }

  /** Calls `fn` with each held message's parts, oldest first, and stamps it as sent at `now`. */
  resend(now: number, fn: (parts: Buffer[]) => void): void {
    for (let i = this.head; i < this.entries.length; i++) {
      const e = this.entries[i]!;
      e.sentAt = now;
      fn(e.parts);
    }
  }

  clear(): void {
    this.entries = [];
    this.head = 0;
    this.byteCount = 0;
  }
}
