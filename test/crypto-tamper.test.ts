// A relay in the middle (like the hub) that tampers with sealed records: flips a bit, drops,
// replays or swaps records. Each is detected with its code and no byte of the bad record (or
// anything after it) reaches the layer above. A relay that logs everything sees no plaintext.
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeCryptoPools } from '../src/crypto/worker-pool.js';
import { RECORD_HEADER_SIZE } from '../src/crypto/constants.js';
import {
  collect,
  ensureCryptoWorkerBuilt,
  sameMessages,
  relayPair,
  securePair,
  until,
  type PairKind,
  type Tamper,
} from './crypto-helpers.js';

beforeAll(() => ensureCryptoWorkerBuilt());
afterAll(async () => closeCryptoPools());

/** a -> b handshake messages 1 and 3 pass first; a's records start at relay index 2. */
const FIRST_RECORD = 2;
const BAD = 3; // the record the relay tampers with

const modes = [
  { name: 'inline', opts: { crypto: 'inline' as const } },
  { name: 'workers', opts: { crypto: 'workers' as const, workerThreads: 1 } },
];

const onRecord = (k: number, f: (m: Buffer) => Buffer[]): Tamper => {
  return (dir, i, m) => (dir === 'ab' && i === FIRST_RECORD + k ? f(m) : [m]);
};

const flipBit =
  (at: (m: Buffer) => number, bit = 0): ((m: Buffer) => Buffer[]) =>
  (m) => {
    const c = Buffer.from(m);
    c[at(c)]! ^= 1 << bit;
    return [c];
  };

function swapRecords(k: number): Tamper {
  let held: Buffer | undefined;
  return (dir, i, m) => {
    if (dir !== 'ab') return [m];
    if (i === FIRST_RECORD + k) {
      held = m;
      return [];
    }
    if (i === FIRST_RECORD + k + 1 && held) return [m, held];
    return [m];
  };
}

const cases: Array<{ name: string; tamper: Tamper; code: string; delivered: number }> = [
  {
    name: 'flips one ciphertext bit',
    tamper: onRecord(
      BAD,
      flipBit((_m) => RECORD_HEADER_SIZE + 5, 3),
    ),
    code: 'ERR_RECORD_AUTH',
    delivered: BAD,
  },
  {
    name: 'flips one tag bit',
    tamper: onRecord(
      BAD,
      flipBit((m) => m.length - 1, 7),
    ),
    code: 'ERR_RECORD_AUTH',
    delivered: BAD,
  },
  {
    name: 'flips the key epoch (AAD)',
    tamper: onRecord(
      BAD,
      flipBit(() => 3, 0),
    ),
    code: 'ERR_RECORD_AUTH',
    delivered: BAD,
  },
  {
    name: 'flips a sequence bit',
    tamper: onRecord(
      BAD,
      flipBit(() => 11, 4),
    ),
    code: 'ERR_RECORD_SEQUENCE',
    delivered: BAD,
  },
  { name: 'drops a record', tamper: onRecord(BAD, () => []), code: 'ERR_RECORD_SEQUENCE', delivered: BAD },
  { name: 'replays a record', tamper: onRecord(BAD, (m) => [m, Buffer.from(m)]), code: 'ERR_RECORD_SEQUENCE', delivered: BAD + 1 },
  { name: 'swaps two records', tamper: swapRecords(BAD), code: 'ERR_RECORD_SEQUENCE', delivered: BAD },
];

const messages = Array.from({ length: 8 }, (_, i) => Buffer.concat([Buffer.from(`record-${i}:`), randomBytes(1000 + i * 3000)]));

async function runCase(kind: PairKind, opts: object, tamper: Tamper) {
  const relay = await relayPair(kind, tamper);
  try {
    const [sa, sb] = await securePair(relay.a, relay.b, opts, opts);
    const ea = collect(sa);
    const eb = collect(sb);
    for (const m of messages) sa.send([m]);
    const err = (await eb.closed) as (Error & { code?: string }) | undefined;
    await ea.closed; // the failure tears the whole path down
    return { err, delivered: eb.messages };
  } finally {
    await relay.cleanup();
  }
}

describe.each(['memory', 'tcp'] as PairKind[])('tampering relay over %s', (kind) => {
  for (const mode of modes) {
    it.each(cases)(`$name -> $code, only the good records before it delivered (${mode.name})`, async ({ tamper, code, delivered }) => {
      const r = await runCase(kind, mode.opts, tamper);
      expect(r.err?.code).toBe(code);
      expect(sameMessages(r.delivered, messages.slice(0, delivered))).toBe(true);
    });
  }
});

describe('tampering relay, any bit', () => {
  it('flipping any single bit of a record is detected and nothing corrupted is delivered', async () => {
    await fc.assert(
      fc.asyncProperty(fc.nat(), fc.integer({ min: 0, max: 7 }), async (pos, bit) => {
        const r = await runCase(
          'memory',
          { crypto: 'inline' },
          onRecord(
            BAD,
            flipBit((m) => pos % m.length, bit),
          ),
        );
        expect(['ERR_RECORD_AUTH', 'ERR_RECORD_SEQUENCE']).toContain(r.err?.code);
        expect(sameMessages(r.delivered, messages.slice(0, BAD))).toBe(true);
      }),
      { numRuns: 40 },
    );
  });
});

describe('a relay that logs everything', () => {
  it.each(modes)('sees no plaintext of a known marker in either direction ($name)', async ({ opts }) => {
    const marker = 'MARKER-7f3a-do-not-leak-ssh-password';
    const relay = await relayPair('tcp');
    try {
      const [sa, sb] = await securePair(relay.a, relay.b, opts, opts);
      const ea = collect(sa);
      const eb = collect(sb);
      const payload = (n: number) => Buffer.from(`${marker} #${n} `.repeat(50));
      for (let i = 0; i < 20; i++) {
        sa.send([payload(i)]);
        sb.send([Buffer.from(marker), payload(i)]);
      }
      await until(() => eb.messages.length === 20 && ea.messages.length === 20);
      expect(eb.messages[19]!.toString()).toContain(marker);
      const wire = Buffer.concat(relay.log);
      expect(wire.length).toBeGreaterThan(20 * 2 * payload(0).length);
      expect(wire.includes(Buffer.from(marker))).toBe(false);
      expect(wire.includes(Buffer.from('MARKER'))).toBe(false);
      sa.close();
      await eb.closed;
    } finally {
      await relay.cleanup();
    }
  });
});
