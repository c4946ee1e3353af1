/**
 * The fair scheduler's ready ring: channels with data to send take turns in FIFO order, each
 * turn bounded by the scheduler slice. A channel is in the ring at most once.
 */
export interface RingMember {
  inRing: boolean;
}

/** A FIFO of members without duplicates, for the scheduler's turns. */
export class ReadyRing<T extends RingMember> {
  private items: T[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    if (item.inRing) return;
    item.inRing = true;
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head++]!;
    item.inRing = false;
    if (this.head === this.items.length) {
      this.items.length = 0;
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Puts a member back at the front (it keeps its turn), e.g. when the session ran out of credit. */
  unshift(item: T): void {
    if (item.inRing) return;
    item.inRing = true;
    if (this.head > 0) this.items[--this.head] = item;
    else this.items.unshift(item);
  }

  clear(): void {
    for (let i = this.head; i < this.items.length; i++) this.items[i]!.inRing = false;
    this.items = [];
    this.head = 0;
  }
}
