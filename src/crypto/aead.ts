/**
 * The AEAD primitive of one record: nonce construction and seal/open with node:crypto. Shared by
 * the inline path and the worker, so it imports nothing but node:crypto and a util (the worker
 * loads it as compiled JS from dist/).
 */
import { createCipheriv, createDecipheriv, type CipherGCM, type DecipherGCM } from 'node:crypto';
import { coalesceSmall } from '../util/coalesce.js';

/** The handshake's AEAD; the value is the Noise cipher name (AESGCM is AES-256-GCM). */
export type CipherName = 'AESGCM' | 'ChaChaPoly';

/**
 * The AEAD that seals records, negotiated in the handshake (docs/PROTOCOL.md, "Record suites");
 * the value is the node:crypto algorithm name. A peer that does not negotiate (record protocol
 * before suites) uses the handshake's cipher: `LEGACY_SUITE`.
 */
export type RecordSuite = 'aes-128-gcm' | 'aes-256-gcm' | 'chacha20-poly1305';

/** Every record suite this implementation knows. */
export const RECORD_SUITES: readonly RecordSuite[] = ['aes-128-gcm', 'aes-256-gcm', 'chacha20-poly1305'];

/** Key bytes of each suite. */
export const SUITE_KEY_SIZE: Record<RecordSuite, number> = { 'aes-128-gcm': 16, 'aes-256-gcm': 32, 'chacha20-poly1305': 32 };

/** The record suite a peer that does not negotiate uses: the handshake's cipher. */
export const LEGACY_SUITE: Record<CipherName, RecordSuite> = { AESGCM: 'aes-256-gcm', ChaChaPoly: 'chacha20-poly1305' };

const TAG = 16;

/**
 * Record nonce: the 12-byte per-direction, per-epoch IV XOR the 64-bit sequence number
 * left-padded with zeros (TLS 1.3 construction, RFC 8446 §5.3).
 */
export function recordNonce(iv: Buffer, seq: number, into?: Buffer): Buffer {
  // `into`: a scratch buffer the caller reuses (createCipheriv copies the IV, so inline sealing
  // need not allocate one per record).
  const nonce = into ?? Buffer.allocUnsafe(12);
  iv.copy(nonce, 0, 0, 12);
  const hi = Math.floor(seq / 0x1_0000_0000);
  const lo = seq >>> 0;
  nonce.writeUInt32BE((nonce.readUInt32BE(4) ^ hi) >>> 0, 4);
  nonce.writeUInt32BE((nonce.readUInt32BE(8) ^ lo) >>> 0, 8);
  return nonce;
}

/** Parts below this size are joined before sealing (one native call instead of several). */
const SMALL_PART = 4096;

/** The cipher options of every record (one object, not one per record). */
const TAG_OPTIONS = { authTagLength: TAG } as const;

/**
 * The total of `parts` when they are all together below SMALL_PART (a small message: joined
 * in one go, without coalesceSmall's run bookkeeping), 0 when there are none, else -1.
 */
function smallTotal(parts: readonly Uint8Array[]): number {
  let total = 0;
  for (const p of parts) {
    total += p.length;
    if (total >= SMALL_PART) return -1;
  }
  return total;
}

/**
 * The cipher that seals one record: `key`, `nonce` and `header` (its AAD, already set) are that
 * record's. Made apart from sealParts so that it can be made ahead, before the record is there
 * (SecureTransport makes the next record's once the current one is written): making it (the
 * cipher object, OpenSSL's lookup of the algorithm and the key setup) costs more than sealing a
 * small record with it, and a record header depends only on the key epoch and sequence number,
 * so the AAD can go in ahead too. Use it for one record only: its nonce is that record's.
 */
export function recordCipher(suite: RecordSuite, key: Buffer, nonce: Buffer, header: Uint8Array): CipherGCM {
  // The cast picks the GCM overload; chacha20-poly1305 has the same API shape.
  const c = createCipheriv(suite as 'aes-256-gcm', key, nonce, TAG_OPTIONS);
  c.setAAD(header);
  return c;
}

/**
 * The decipher that opens one record, its AAD (`header`) set, made ahead like recordCipher's
 * cipher; for that record only, and only if its header is byte for byte `header`.
 */
export function recordDecipher(suite: RecordSuite, key: Buffer, nonce: Buffer, header: Uint8Array): DecipherGCM {
  const d = createDecipheriv(suite as 'aes-256-gcm', key, nonce, TAG_OPTIONS);
  d.setAAD(header);
  return d;
}

/**
 * Seals `parts` (concatenated) with `header` as AAD: one `update` per large part (never joined
 * with anything), small ones joined first. Appends the ciphertext pieces and then the tag to
 * `out` (returned), so the caller can pass `out = [header]` and send the result as it is.
 * `made`: this record's cipher (recordCipher with the same key, nonce and header), made ahead;
 * it is used up.
 */
export function sealParts(
  suite: RecordSuite,
  key: Buffer,
  nonce: Buffer,
  header: Buffer,
  parts: readonly Uint8Array[],
  out: Buffer[] = [],
  made?: CipherGCM,
): Buffer[] {
  const c = made ?? recordCipher(suite, key, nonce, header);
  // Each update() is a native call with a fixed cost and an output allocation: small parts
  // (frame headers, a ping) are joined first, so a small message costs one call, a bulk one two.
  const small = smallTotal(parts);
  if (small > 0) out.push(c.update(parts.length === 1 ? parts[0]! : Buffer.concat(parts, small)));
  else if (small < 0) coalesceSmall(parts, SMALL_PART, (chunk) => out.push(c.update(chunk)));
  const last = c.final();
  if (last.length > 0) out.push(last);
  out.push(c.getAuthTag());
  return out;
}

/**
 * Opens `body` (ciphertext ‖ tag); returns the plaintext, or null when authentication fails.
 * `made`: this record's decipher (recordDecipher with the same key and nonce, and `header`'s
 * bytes), made ahead; it is used up.
 */
export function openBody(
  suite: RecordSuite,
  key: Buffer,
  nonce: Buffer,
  header: Uint8Array,
  body: Uint8Array,
  made?: DecipherGCM,
): Buffer | null {
  if (body.length < TAG) return null;
  const d = made ?? recordDecipher(suite, key, nonce, header);
  d.setAuthTag(body.subarray(body.length - TAG));
  const plain = d.update(body.subarray(0, body.length - TAG));
  try {
    d.final();
  } catch {
    return null;
  }
  return plain;
}

/**
 * Opens a record that arrived as pieces: `ciphertext` holds views of the ciphertext in order
 * (each fed to the cipher as it is, never joined), `tag` the 16-byte tag. Returns the plaintext
 * pieces (empty ones dropped), or null when authentication fails; nothing is returned before
 * the tag has been checked. `made` as for openBody.
 */
export function openParts(
  suite: RecordSuite,
  key: Buffer,
  nonce: Buffer,
  header: Uint8Array,
  ciphertext: readonly Uint8Array[],
  tag: Uint8Array,
  made?: DecipherGCM,
): Buffer[] | null {
  if (tag.length !== TAG) return null;
  const d = made ?? recordDecipher(suite, key, nonce, header);
  d.setAuthTag(tag);
  const plain: Buffer[] = [];
  for (const piece of ciphertext) {
    if (piece.length > 0) plain.push(d.update(piece));
  }
  try {
    d.final();
  } catch {
    return null;
  }
  return plain;
}
