/**
 * Views over a message that arrived in pieces (a record split across socket reads), so the
 * record layer can read its header and tag and feed the ciphertext to the cipher piece by piece
 * instead of joining the pieces first (a 64 KiB copy per record).
 */

/** Total length of `parts`. */
export function partsLength(parts: readonly Buffer[]): number {
  let n = 0;
  for (const p of parts) n += p.length;
  return n;
}

/**
 * Bytes [start, end) of the concatenation of `parts`, as views in order (no copy). Empty pieces
 * are left out.
 */
export function sliceParts(parts: readonly Buffer[], start: number, end: number): Buffer[] {
  const out: Buffer[] = [];
  let at = 0; // offset of the current part in the concatenation
  for (const p of parts) {
    const pEnd = at + p.length;
    if (pEnd > start && at < end) {
      const from = Math.max(start, at) - at;
      const to = Math.min(end, pEnd) - at;
      if (to > from) out.push(from === 0 && to === p.length ? p : p.subarray(from, to));
    }
    if (pEnd >= end) break;
    at = pEnd;
  }
  return out;
}

/**
 * Bytes [start, end) of the concatenation as one buffer: a view when they lie in one part, else a
 * small copy (used for the 12-byte header and the 16-byte tag only).
 */
export function gatherBytes(parts: readonly Buffer[], start: number, end: number): Buffer {
  const pieces = sliceParts(parts, start, end);
  if (pieces.length === 1) return pieces[0]!;
  return Buffer.concat(pieces, end - start);
}
