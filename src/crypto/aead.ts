/**
 * The AEAD primitive of one record: nonce construction and seal/open with node:crypto. Shared by
 * the inline path and the worker, so it imports nothing but node:crypto (the worker loads it as
 * compiled JS from dist/).
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';

/** AEAD algorithms a session can use; the value is the Noise cipher name. */
export type CipherName = 'AESGCM' | 'ChaChaPoly';

/** node:crypto algorithm string for each cipher. */
// The cast at each call site picks the GCM overload; chacha20-poly1305 has the same API shape.
export const NODE_CIPHER: Record<CipherName, 'aes-256-gcm' | 'chacha20-poly1305'> = {
  AESGCM: 'aes-256-gcm',
  ChaChaPoly: 'chacha20-poly1305',
};

const TAG = 16;

/**
 * Record nonce: the 12-byte per-direction, per-epoch IV XOR the 64-bit sequence number
 * left-padded with zeros (TLS 1.3 construction, RFC 8446 §5.3).
 */
export function recordNonce(iv: Buffer, seq: number): Buffer {
  const nonce = Buffer.from(iv);
  const hi = Math.floor(seq / 0x1_0000_0000);
  const lo = seq >>> 0;
  nonce.writeUInt32BE((nonce.readUInt32BE(4) ^ hi) >>> 0, 4);
  nonce.writeUInt32BE((nonce.readUInt32BE(8) ^ lo) >>> 0, 8);
  return nonce;
}

/**
 * Seals `parts` (concatenated) with `header` as AAD. Returns the ciphertext pieces followed by the
 * tag, so the caller can send [header, ...pieces] without copying them together.
 */
export function sealParts(cipher: CipherName, key: Buffer, nonce: Buffer, header: Buffer, parts: readonly Uint8Array[]): Buffer[] {
  const c = createCipheriv(NODE_CIPHER[cipher] as 'aes-256-gcm', key, nonce, { authTagLength: TAG });
  c.setAAD(header);
  const out: Buffer[] = [];
  for (const part of parts) {
    if (part.length > 0) out.push(c.update(part));
  }
  const last = c.final();
  if (last.length > 0) out.push(last);
  out.push(c.getAuthTag());
  return out;
}

/** Opens `body` (ciphertext ‖ tag); returns the plaintext, or null when authentication fails. */
export function openBody(cipher: CipherName, key: Buffer, nonce: Buffer, header: Uint8Array, body: Uint8Array): Buffer | null {
  if (body.length < TAG) return null;
  const d = createDecipheriv(NODE_CIPHER[cipher] as 'aes-256-gcm', key, nonce, { authTagLength: TAG });
  d.setAAD(header);
  d.setAuthTag(body.subarray(body.length - TAG));
  const plain = d.update(body.subarray(0, body.length - TAG));
  try {
    d.final();
  } catch {
    return null;
  }
  return plain;
}
