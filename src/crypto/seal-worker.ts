/**
 * Piscina worker: seals or opens a batch of records in one task, so the ~50 us worker round trip
 * is paid per batch (several 64 KiB records), not per record. The batch travels as one
 * transferred ArrayBuffer and is sealed or opened **in place** and transferred back, so no buffer
 * is allocated or copied per task beyond what the cipher itself returns. Imports only
 * node:crypto (via aead.ts) and piscina, and runs as compiled JS (dist/src/crypto/seal-worker.js).
 */
import { move } from 'piscina';
import { openBody, sealParts, type RecordSuite } from './aead.js';

/**
 * One batch. Item i spans data[offsets[i], offsets[i] + lengths[i]) and uses keys[keyIndex[i]].
 * seal: each item is header(12) ‖ plaintext ‖ 16 spare bytes; it becomes the sealed record.
 * open: data starts with a u32 status slot; each item is a received record, header(12) ‖
 *       ciphertext ‖ tag(16); the plaintext replaces the ciphertext. Status 0 = all good,
 *       k+1 = item k failed authentication (items from k on are not opened).
 */
export interface CryptoTask {
  op: 'seal' | 'open';
  suite: RecordSuite;
  data: ArrayBuffer;
  offsets: number[];
  lengths: number[];
  keyIndex: number[];
  keys: Uint8Array[];
  /** 12 bytes per item. */
  nonces: Uint8Array;
}

const HEADER = 12;
const TAG = 16;

/** Seals or opens one batch of records on a worker thread. */
export default function runCryptoTask(task: CryptoTask): ArrayBuffer {
  const data = Buffer.from(task.data);
  const keys = task.keys.map((k) => Buffer.from(k.buffer, k.byteOffset, k.byteLength));
  for (let i = 0; i < task.offsets.length; i++) {
    const off = task.offsets[i]!;
    const end = off + task.lengths[i]!;
    const header = data.subarray(off, off + HEADER);
    const key = keys[task.keyIndex[i]!]!;
    const nonce = Buffer.from(task.nonces.buffer, task.nonces.byteOffset + 12 * i, 12);
    if (task.op === 'seal') {
      // update() returns the ciphertext in a new buffer, so writing it over the plaintext is safe.
      let at = off + HEADER;
      for (const piece of sealParts(task.suite, key, nonce, header, [data.subarray(at, end - TAG)])) {
        data.set(piece, at);
        at += piece.length;
      }
    } else {
      const plain = openBody(task.suite, key, nonce, header, data.subarray(off + HEADER, end));
      if (!plain) {
        data.writeUInt32BE(i + 1, 0);
        break;
      }
      data.set(plain, off + HEADER);
    }
  }
  return move(task.data) as ArrayBuffer;
}
