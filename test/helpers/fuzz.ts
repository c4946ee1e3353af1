/**
 * Shared knobs for the fuzz tests (test/fuzz-*.test.ts). `npm test` runs each property a bounded
 * number of times so the whole set stays fast; `FUZZ_RUNS=20000 npm run fuzz` runs the same
 * properties longer. Also: mutators over byte strings and a heap probe for growth checks.
 */
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { splitBytesAt } from './chunks.js';

/** Runs requested through the environment; 0 means "the fast default of each test". */
const requested = Number.parseInt(process.env.FUZZ_RUNS ?? '', 10);
export const LONG_FUZZ = Number.isSafeInteger(requested) && requested > 0;

/** Number of runs: `fast` in `npm test`, FUZZ_RUNS × `scale` in the long mode (at least 1). */
export function fuzzRuns(fast: number, scale = 1): number {
  return LONG_FUZZ ? Math.max(1, Math.round(requested * scale)) : fast;
}

/** Per-test timeout: generous in the long mode, the suite's default otherwise. */
export const FUZZ_TIMEOUT_MS = LONG_FUZZ ? 60 * 60_000 : 30_000;

/** A fixed seed when FUZZ_SEED is set, so a failure found in a long run can be replayed. */
export function fuzzParams(fast: number, scale = 1): fc.Parameters<unknown> {
  const seed = Number.parseInt(process.env.FUZZ_SEED ?? '', 10);
  return Number.isSafeInteger(seed) ? { numRuns: fuzzRuns(fast, scale), seed } : { numRuns: fuzzRuns(fast, scale) };
}

/** One way to damage a byte string. */
export type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'set'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'u32'; at: number; value: number };

/** Positions are fractions (0..1) of the length at the time the mutation applies. */
export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('flip' as const),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
      bit: fc.integer({ min: 0, max: 7 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
      value: fc.integer({ min: 0, max: 255 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.double({ min: 0, max: 1, noNaN: true }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('insert' as const),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 24 }),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('u32' as const),
      at: fc.double({ min: 0, max: 1, noNaN: true }),
      // Lengths and ids at the edges: 0, just past the end, huge, all ones.
      value: fc.oneof(fc.constantFrom(0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 65_536, 65_537, 4097), fc.nat()),
    }),
  },
);

function pos(at: number, length: number): number {
  return Math.min(length - 1, Math.floor(at * length));
}

/** Applies `mutations` in order to a copy of `input`. */
export function mutate(input: Buffer, mutations: readonly Mutation[]): Buffer {
  let b = Buffer.from(input);
  for (const m of mutations) {
    if (b.length === 0) break;
    const at = pos(m.at, b.length);
    switch (m.kind) {
      case 'flip':
        b[at]! ^= 1 << m.bit;
        break;
      case 'set':
        b[at] = m.value;
        break;
      case 'truncate':
        b = b.subarray(0, at);
        break;
      case 'insert':
        b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
        break;
      case 'u32':
        if (b.length >= 4) b.writeUInt32BE(m.value >>> 0, Math.min(at, b.length - 4));
        break;
    }
  }
  return b;
}

/** Splits `data` at the given fractional cut points (0..1 of its length). */
export function splitAt(data: Buffer, cuts: readonly number[]): Buffer[] {
  return splitBytesAt(
    data,
    cuts.map((c) => Math.floor(c * data.length)),
  );
}

let gcFn: (() => void) | undefined;
/** Forces a full collection (exposing gc at runtime when the process was not started with it). */
export function collectGarbage(): void {
  if (!gcFn) {
    const existing = (globalThis as { gc?: () => void }).gc;
    if (existing) gcFn = existing;
    else {
      v8.setFlagsFromString('--expose-gc');
      gcFn = runInNewContext('gc') as () => void;
    }
  }
  gcFn();
  gcFn();
}

/** Heap in use after a full collection, bytes. */
export function heapAfterGc(): number {
  collectGarbage();
  return process.memoryUsage().heapUsed;
}
