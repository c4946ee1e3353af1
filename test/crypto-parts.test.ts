// Records that arrive split across reads (the inner transport's onMessageParts): the record layer
// opens them piece by piece, whatever the split points (inside the header, the ciphertext or the
// tag), hands plaintext pieces to a layer above that takes pieces and a joined message to one
// that does not, and still rejects a tampered split record with nothing delivered.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createMemoryTransportPair } from '../src/transport/memory.js';
import { gatherBytes, partsLength, sliceParts } from '../src/crypto/parts.js';
import { MAX_RECORD_PLAINTEXT, RECORD_OVERHEAD } from '../src/crypto/constants.js';
import { DEFAULT_MAX_MESSAGE_SIZE } from '../src/transport/transport.js';
import { closeCryptoPools } from '../src/crypto/worker-pool.js';
import { collect, ensureCryptoWorkerBuilt, securePair, until } from './crypto-helpers.js';
import { splitBytesAt } from './helpers/chunks.js';
import { SplittingTransport } from './helpers/splitting-transport.js';

beforeAll(() => ensureCryptoWorkerBuilt());
afterAll(() => closeCryptoPools());

/** Cut points that land inside the header, the ciphertext and the tag of a record. */
const nastyCuts = (m: Buffer, i: number): number[] => {
  const n = m.length;
  return [1 + (i % 11), 12, 13 + (i % 5), Math.floor(n / 2), n - 16 - (i % 3), n - 1 - (i % 15)];
};

describe('parts helpers', () => {
  it('sliceParts and gatherBytes match slicing the joined buffer', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 200 }),
        fc.array(fc.nat(200), { maxLength: 8 }),
        fc.nat(200),
        fc.nat(200),
        (bytes, cuts, x, y) => {
          const m = Buffer.from(bytes);
          const parts = splitBytesAt(m, cuts);
          const [s, e] = [Math.min(x, y, m.length), Math.min(Math.max(x, y), m.length)];
          expect(partsLength(parts)).toBe(m.length);
          const views = sliceParts(parts, s, e);
          expect(views.every((v) => v.length > 0)).toBe(true);
          expect(Buffer.concat(views).equals(m.subarray(s, e))).toBe(true);
          expect(gatherBytes(parts, s, e).equals(m.subarray(s, e))).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});

const modes = [
  { name: 'inline', opts: { crypto: 'inline' as const } },
  { name: 'workers x1', opts: { crypto: 'workers' as const, workerThreads: 1 } },
];

describe.each(modes)('records split across reads ($name)', ({ opts }) => {
  it('arrive intact, as pieces to a handler that takes them and joined to one that does not', async () => {
    const [ra, rb] = createMemoryTransportPair();
    const [sa, sb] = await securePair(new SplittingTransport(ra, nastyCuts), new SplittingTransport(rb, nastyCuts), opts, opts);
    const sent = Array.from({ length: 30 }, (_, i) =>
      randomBytes(i === 0 ? MAX_RECORD_PLAINTEXT : 1 + ((i * 7919) % MAX_RECORD_PLAINTEXT)),
    );
    // b's handler takes pieces (as the mux does); a's only whole messages.
    const gotB: Buffer[] = [];
    let piecesSeen = 0;
    let resolveB!: () => void;
    const doneB = new Promise<void>((r) => (resolveB = r));
    const push = (m: Buffer): void => {
      gotB.push(Buffer.from(m));
      if (gotB.length === sent.length) resolveB();
    };
    sb.attach({
      onMessage: push,
      onMessageParts: (parts) => {
        piecesSeen++;
        push(Buffer.concat(parts));
      },
      onDrain: () => {},
      onClose: () => {},
    });
    const ea = collect(sa);
    for (const m of sent) sa.send([m]);
    const back = Array.from({ length: 10 }, () => randomBytes(20_000));
    for (const m of back) sb.send([m]);
    await doneB;
    await until(() => ea.messages.length === back.length, 10_000);
    expect(gotB.map((m) => m.toString('hex'))).toEqual(sent.map((m) => m.toString('hex')));
    expect(ea.messages.map((m) => m.toString('hex'))).toEqual(back.map((m) => m.toString('hex')));
    if (opts.crypto === 'inline') expect(piecesSeen).toBeGreaterThan(0); // pieces went up unjoined
    sa.close();
  });

  it('a bit flipped in a split record ends the session with ERR_RECORD_AUTH and delivers nothing of it', async () => {
    const [ra, rb] = createMemoryTransportPair();
    // The 3rd application record (type 0x17) b receives gets a bit flipped in its ciphertext,
    // three quarters in, i.e. in a later piece than the header.
    let seen = 0;
    const flip = (m: Buffer): Buffer => {
      if (m[0] !== 0x17) return m;
      if (seen++ !== 2) return m;
      const copy = Buffer.from(m);
      copy[Math.floor(copy.length * 0.75)]! ^= 0x01;
      return copy;
    };
    const [sa, sb] = await securePair(new SplittingTransport(ra, nastyCuts), new SplittingTransport(rb, nastyCuts, flip), opts, opts);
    collect(sa);
    const eb = collect(sb);
    const sent = Array.from({ length: 5 }, () => randomBytes(40_000));
    for (const m of sent) sa.send([m]);
    const err = (await eb.closed) as Error & { code?: string };
    expect(err?.code).toBe('ERR_RECORD_AUTH');
    expect(eb.messages.length).toBe(2);
    expect(eb.messages.every((m, i) => m.equals(sent[i]!))).toBe(true);
  });
});

describe('record size', () => {
  it('one record carries 64 KiB + 1 KiB, which fits the default transport message when sealed', async () => {
    expect(MAX_RECORD_PLAINTEXT).toBe(66_560);
    expect(MAX_RECORD_PLAINTEXT + RECORD_OVERHEAD).toBeLessThanOrEqual(DEFAULT_MAX_MESSAGE_SIZE);
    const [ra, rb] = createMemoryTransportPair();
    const [sa, sb] = await securePair(ra, rb);
    expect(sa.maxMessageSize).toBe(66_560);
    const eb = collect(sb);
    const big = randomBytes(66_560);
    expect(sa.send([big.subarray(0, 10), big.subarray(10)])).toBe(true);
    await until(() => eb.messages.length === 1, 10_000);
    expect(eb.messages[0]?.equals(big)).toBe(true);
    sa.close();
  });
});
