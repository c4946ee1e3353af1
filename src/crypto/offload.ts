/**
 * Ordered batching in front of the worker pool, one per direction of a session. Items are
 * gathered until a batch holds `batchBytes` (or the current tick ends), copied once into a fresh
 * ArrayBuffer that is transferred (not cloned) to a worker, sealed or opened there in place and
 * transferred back; results are handed back strictly in submission order even when two threads
 * finish out of order.
 */
import type { Piscina } from 'piscina';
import type { RecordSuite } from './aead.js';
import type { CryptoTask } from './seal-worker.js';
import { RECORD_HEADER_SIZE, TAG_SIZE } from './constants.js';

/** One record to seal (header + plaintext parts) or open (whole record). */
export interface OffloadItem {
  parts: readonly Buffer[];
  size: number;
  key: Buffer;
  nonce: Buffer;
}

/** Open tasks start with a u32 status (see seal-worker.ts). */
const STATUS = 4;

interface Batch {
  items: OffloadItem[];
  /** Where each item sits in the task buffer (set at dispatch). */
  offsets?: number[];
  bytes: number;
  done: boolean;
  out?: ArrayBuffer;
  error?: unknown;
}

/** A finished batch of sealed or opened records, in submission order. */
export interface OffloadOutput {
  /** Seal: each sealed record. Open: each plaintext, in order, up to a failure. */
  results: Buffer[];
  /** Open only: true when the record after `results` failed authentication. */
  authFailed: boolean;
}

/** Batches records to the worker pool and releases results strictly in submission order. */
export class OrderedOffload {
  private current: Batch | undefined;
  private readonly inflight: Batch[] = [];
  private flushScheduled = false;
  private stopped = false;
  /** Bytes submitted and not yet handed back. */
  pendingBytes = 0;

  constructor(
    private readonly pool: Piscina,
    private readonly op: 'seal' | 'open',
    private readonly suite: RecordSuite,
    private readonly batchBytes: number,
    private readonly onOutput: (output: OffloadOutput) => void,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** True when nothing is waiting or in a worker. */
  get idle(): boolean {
    return this.pendingBytes === 0 && this.inflight.length === 0 && !this.current;
  }

  push(item: OffloadItem): void {
    if (this.stopped) return;
    this.current ??= { items: [], bytes: 0, done: false };
    const batch = this.current;
    batch.items.push(item);
    batch.bytes += item.size;
    this.pendingBytes += item.size;
    if (batch.bytes >= this.batchBytes) this.dispatch();
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      const flush = (): void => {
        this.flushScheduled = false;
        this.dispatch();
      };
      // Seal: after the caller's synchronous burst (the mux writes many frames in one tick).
      // Open: records arrive one socket read at a time, so wait for the rest of this I/O phase.
      if (this.op === 'seal') queueMicrotask(flush);
      else setImmediate(flush);
    }
  }

  /** Drops everything not yet handed back; later results are ignored. */
  stop(): void {
    this.stopped = true;
    this.current = undefined;
    this.inflight.length = 0;
    this.pendingBytes = 0;
  }

  private dispatch(): void {
    const batch = this.current;
    if (!batch || this.stopped) return;
    this.current = undefined;
    this.inflight.push(batch);
    const seal = this.op === 'seal';
    // Seal items get room for their tag; open tasks start with a status slot. allocUnsafeSlow:
    // an own, unpooled ArrayBuffer (transferable) without zero-filling what we overwrite anyway.
    const total = seal ? batch.bytes + TAG_SIZE * batch.items.length : STATUS + batch.bytes;
    const data = Buffer.allocUnsafeSlow(total);
    if (!seal) data.writeUInt32BE(0, 0);
    const keys: Buffer[] = [];
    const task: CryptoTask = {
      op: this.op,
      suite: this.suite,
      data: data.buffer as ArrayBuffer,
      offsets: [],
      lengths: [],
      keyIndex: [],
      keys: [],
      nonces: new Uint8Array(12 * batch.items.length),
    };
    let at = seal ? 0 : STATUS;
    batch.items.forEach((item, i) => {
      task.offsets.push(at);
      task.lengths.push(seal ? item.size + TAG_SIZE : item.size);
      for (const part of item.parts) {
        data.set(part, at);
        at += part.length;
      }
      if (seal) at += TAG_SIZE;
      let k = keys.indexOf(item.key);
      if (k < 0) k = keys.push(item.key) - 1;
      task.keyIndex.push(k);
      task.nonces.set(item.nonce, 12 * i);
    });
    task.keys = keys.map((k) => new Uint8Array(k));
    batch.offsets = task.offsets;
    this.pool.run(task, { transferList: [task.data] }).then(
      (out: ArrayBuffer) => {
        batch.done = true;
        batch.out = out;
        this.drainInOrder();
      },
      (error: unknown) => {
        batch.done = true;
        batch.error = error;
        this.drainInOrder();
      },
    );
  }

  private drainInOrder(): void {
    while (!this.stopped && this.inflight.length > 0 && this.inflight[0]!.done) {
      const batch = this.inflight.shift()!;
      this.pendingBytes -= batch.bytes;
      if (batch.error !== undefined || !batch.out) {
        this.stop();
        this.onError(batch.error);
        return;
      }
      this.onOutput(this.split(batch));
    }
  }

  private split(batch: Batch): OffloadOutput {
    const out = Buffer.from(batch.out!);
    const offsets = batch.offsets!;
    const results: Buffer[] = [];
    if (this.op === 'seal') {
      for (const [i, item] of batch.items.entries()) results.push(out.subarray(offsets[i]!, offsets[i]! + item.size + TAG_SIZE));
      return { results, authFailed: false };
    }
    const failedAt = out.readUInt32BE(0);
    const count = failedAt === 0 ? batch.items.length : failedAt - 1;
    for (let i = 0; i < count; i++) {
      const start = offsets[i]! + RECORD_HEADER_SIZE;
      results.push(out.subarray(start, start + batch.items[i]!.size - RECORD_HEADER_SIZE - TAG_SIZE));
    }
    return { results, authFailed: failedAt !== 0 };
  }
}
