/**
 * Piscina worker: seals or opens a batch of records in one task, so the ~50 us worker round trip
 * is paid per batch (several 64 KiB records), not per record. Input and output travel as one
 * transferred ArrayBuffer each. Imports only node:crypto (via aead.ts) and piscina, and runs as
 * compiled JS (dist/src/crypto/seal-worker.js).
 */
import { move } from 'piscina';
import { openBody, sealParts, type CipherName } from './aead.js';

/** One batch. Item i spans data[offsets[i], offsets[i] + lengths[i]) and uses keys[keyIndex[i]]. */
export interface CryptoTask {
  op: 'seal' | 'open';
  cipher: CipherName;
  /** seal: header(12) ‖ plaintext per item; open: header(12) ‖ ciphertext ‖ tag(16) per item. */
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

/**
 * seal -> records back to back (each item grows by 16 bytes).
 * open -> u32 status (0 = all good, k+1 = item k failed authentication) ‖ plaintexts back to back
 *         (only those before the failed item are meaningful).
 */
export default function runCryptoTask(task: CryptoTask): ArrayBuffer {
  const data = new Uint8Array(task.data);
  const n = task.offsets.length;
  const keys = task.keys.map((k) => Buffer.from(k.buffer, k.byteOffset, k.byteLength));
  let total = task.op === 'seal' ? 0 : 4;
  for (let i = 0; i < n; i++) total += task.op === 'seal' ? task.lengths[i]! + TAG : task.lengths[i]! - HEADER - TAG;
  const out = new Uint8Array(new ArrayBuffer(total));
  let at = task.op === 'seal' ? 0 : 4;
  for (let i = 0; i < n; i++) {
    const off = task.offsets[i]!;
    const header = data.subarray(off, off + HEADER);
    const body = data.subarray(off + HEADER, off + task.lengths[i]!);
    const key = keys[task.keyIndex[i]!]!;
    const nonce = Buffer.from(task.nonces.buffer, task.nonces.byteOffset + 12 * i, 12);
    if (task.op === 'seal') {
      out.set(header, at);
      at += HEADER;
      for (const piece of sealParts(task.cipher, key, nonce, Buffer.from(header), [body])) {
        out.set(piece, at);
        at += piece.length;
      }
    } else {
      const plain = openBody(task.cipher, key, nonce, header, body);
      if (!plain) {
        new DataView(out.buffer).setUint32(0, i + 1);
        break;
      }
      out.set(plain, at);
      at += plain.length;
    }
  }
  return move(out.buffer) as ArrayBuffer;
}
