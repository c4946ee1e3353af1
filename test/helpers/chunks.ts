/** Cuts a byte string into chunks at given offsets, for decoders fed arbitrary chunk boundaries. */

/** Splits `data` at byte offsets `points` (deduplicated, sorted; those outside (0, length) ignored). */
export function splitBytesAt(data: Buffer, points: readonly number[]): Buffer[] {
  const cuts = [...new Set(points)].filter((p) => p > 0 && p < data.length).sort((x, y) => x - y);
  const out: Buffer[] = [];
  let from = 0;
  for (const p of cuts) {
    out.push(data.subarray(from, p));
    from = p;
  }
  out.push(data.subarray(from));
  return out;
}
