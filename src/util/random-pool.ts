/**
 * Small random values (WebSocket masking keys, handshake nonces, the hub's stream ids and
 * tokens) cut from one CSPRNG draw of 4 KiB: a `randomBytes` call has a fixed cost of
 * microseconds, paid per frame or per stream otherwise. Every byte is handed out once.
 */
import { randomFillSync } from 'node:crypto';

const pool = Buffer.allocUnsafe(4096);
let at = pool.length;

/** `n` (at most 4096) fresh random bytes in a buffer of their own. */
export function randomFromPool(n: number): Buffer {
  if (at + n > pool.length) {
    randomFillSync(pool);
    at = 0;
  }
  // A copy: the pool is refilled in place, and callers keep what they took.
  const out = Buffer.from(pool.subarray(at, at + n));
  at += n;
  return out;
}
