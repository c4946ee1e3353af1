// The record layer makes the next record's cipher ahead (secure-transport.ts, schedulePrepare). A
// cipher made ahead must seal or open exactly the record it was made for: its sequence number and
// key epoch, once. Here records are sent from inside the peer's delivery (a send while a record is
// being opened), from ticks queued between a seal and the tick that makes the next cipher, and in
// bursts, with a new key epoch every record or two: every message must arrive intact, and the
// made-ahead path must have been taken.
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { RecordSuite } from '../src/crypto/aead.js';
import { rawPair, securePair, until } from './crypto-helpers.js';

const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('ciphers made ahead', () => {
  it.each([
    { suite: 'aes-128-gcm' as RecordSuite, rekey: 1 },
    { suite: 'chacha20-poly1305' as RecordSuite, rekey: 2 },
  ])(
    'each seals or opens only its own record: reentrant echoes, sends from ticks, bursts, rekey every $rekey ($suite)',
    async ({ suite, rekey }) => {
      const { a, b, cleanup } = await rawPair('tcp');
      try {
        const [sa, sb] = await securePair(
          a,
          b,
          { crypto: 'inline', rekeyRecords: rekey, suites: [suite] },
          { crypto: 'inline', rekeyRecords: rekey + 1, suites: [suite] },
        );
        const atA: string[] = [];
        const atB: string[] = [];
        let closed = false;
        // b echoes every message from inside its delivery, and some a second time from a tick.
        sb.attach({
          onMessage: (m) => {
            atB.push(digest(m));
            sb.send([m]);
            if (m.length % 3 === 0) {
              const copy = Buffer.from(m);
              process.nextTick(() => sb.send([copy]));
            }
          },
          onDrain: () => {},
          onClose: () => (closed = true),
        });
        sa.attach({ onMessage: (m) => atA.push(digest(m)), onDrain: () => {}, onClose: () => (closed = true) });
        const sent: Buffer[] = [];
        const order: string[] = []; // the digests in the order sa.send() was called
        const send = (m: Buffer): void => {
          order.push(digest(m));
          sa.send([m]);
        };
        for (let round = 0; round < 60; round++) {
          for (let i = 0; i < 1 + (round % 4); i++) {
            const m = randomBytes(1 + ((round * 7919 + i * 31) % (round % 5 === 0 ? 60_000 : 300)));
            sent.push(m);
            if (i % 2 === 0) send(m);
            else process.nextTick(() => send(m));
          }
          if (round % 3 === 0) await new Promise((r) => setImmediate(r));
          else if (round % 3 === 1) await new Promise((r) => process.nextTick(r));
          else await until(() => atB.length === sent.length);
        }
        const echoes = sent.length + sent.filter((m) => m.length % 3 === 0).length;
        await until(() => atB.length === sent.length && atA.length === echoes);
        expect(closed).toBe(false);
        expect(atB).toEqual(order); // all of them, in the order they were sent
        const echoed = [...order, ...sent.filter((m) => m.length % 3 === 0).map(digest)];
        expect([...atA].sort()).toEqual(echoed.sort());
        expect(sa.stats.madeAhead).toBeGreaterThan(0);
        expect(sb.stats.madeAhead).toBeGreaterThan(0);
      } finally {
        await cleanup();
      }
    },
  );
});
