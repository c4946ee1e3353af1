// The record layer end to end over memory and TCP pairs: round trips (inline and workers),
// handshake failures, peer pinning, rekey under a long transfer, orderly close.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { secureInitiator, secureResponder } from '../src/crypto/secure-transport.js';
import { generateStaticKeyPair } from '../src/crypto/keys.js';
import { KnownDevices, acceptAnyKey, allowKeys } from '../src/crypto/trust.js';
import { closeCryptoPools } from '../src/crypto/worker-pool.js';
import { MAX_RECORD_PLAINTEXT } from '../src/crypto/constants.js';
import { collect, ensureCryptoWorkerBuilt, rawPair, sameMessages, securePair, sendAll, until, type PairKind } from './crypto-helpers.js';

beforeAll(() => ensureCryptoWorkerBuilt());
afterAll(async () => closeCryptoPools());

const modes = [
  { name: 'inline', opts: { crypto: 'inline' as const } },
  { name: 'workers x1', opts: { crypto: 'workers' as const, workerThreads: 1 } },
  { name: 'workers x2', opts: { crypto: 'workers' as const, workerThreads: 2 } },
];

describe.each(['memory', 'tcp'] as PairKind[])('round trips over %s', (kind) => {
  it.each(modes)('random messages both ways arrive intact and in order ($name)', async ({ opts }) => {
    const message = fc.oneof(
      { weight: 4, arbitrary: fc.uint8Array({ minLength: 0, maxLength: 300 }) },
      { weight: 1, arbitrary: fc.uint8Array({ minLength: 0, maxLength: MAX_RECORD_PLAINTEXT }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(message, { maxLength: 30 }), fc.array(message, { maxLength: 30 }), async (ab, ba) => {
        const { a, b, cleanup } = await rawPair(kind);
        try {
          const [sa, sb] = await securePair(a, b, opts, opts);
          const ea = collect(sa);
          const eb = collect(sb);
          const abBufs = ab.map((m) => Buffer.from(m));
          const baBufs = ba.map((m) => Buffer.from(m));
          await Promise.all([sendAll(sa, ea, abBufs), sendAll(sb, eb, baBufs)]);
          await until(() => eb.messages.length === ab.length && ea.messages.length === ba.length);
          expect(sameMessages(eb.messages, abBufs)).toBe(true);
          expect(sameMessages(ea.messages, baBufs)).toBe(true);
          sa.close();
          expect(await eb.closed).toBeUndefined();
          expect(await ea.closed).toBeUndefined();
        } finally {
          await cleanup();
        }
      }),
      { numRuns: kind === 'tcp' ? 6 : 10 },
    );
  });
});

describe('handshake', () => {
  it('negotiates ChaChaPoly and reports the Noise protocol name and peer keys', async () => {
    const { a, b } = await rawPair('memory');
    const ka = generateStaticKeyPair();
    const kb = generateStaticKeyPair();
    const [sa, sb] = await securePair(a, b, { cipher: 'ChaChaPoly', staticKeys: ka }, { staticKeys: kb });
    expect(sa.session.protocolName).toBe('Noise_XX_25519_ChaChaPoly_SHA256');
    expect(sb.session.cipher).toBe('ChaChaPoly');
    expect(sa.session.remoteStatic).toEqual(kb.publicKey);
    expect(sb.session.remoteStatic).toEqual(ka.publicKey);
    expect(sa.session.handshakeHash).toEqual(sb.session.handshakeHash);
    const eb = collect(sb);
    collect(sa);
    sa.send([Buffer.from('hello')]);
    await until(() => eb.messages.length === 1);
    expect(eb.messages[0]!.toString()).toBe('hello');
    sa.close();
  });

  it('times out with ERR_HANDSHAKE_TIMEOUT when the peer never answers', async () => {
    const { a } = await rawPair('memory');
    await expect(
      secureInitiator(a, { staticKeys: generateStaticKeyPair(), verifyPeer: acceptAnyKey, handshakeTimeoutMs: 150 }),
    ).rejects.toMatchObject({
      code: 'ERR_HANDSHAKE_TIMEOUT',
    });
    expect(a.closed).toBe(true);
  });

  it('fails with ERR_HANDSHAKE_FAILED on garbage', async () => {
    for (const garbage of [
      randomBytes(100),
      Buffer.concat([Buffer.from([1, 1, 1]), randomBytes(10)]),
      Buffer.from([2, 1, 1, ...randomBytes(96)]),
    ]) {
      const { a, b } = await rawPair('memory');
      const responder = secureResponder(b, { staticKeys: generateStaticKeyPair(), verifyPeer: acceptAnyKey });
      a.attach({ onMessage: () => {}, onDrain: () => {}, onClose: () => {} });
      a.send([garbage]);
      await expect(responder).rejects.toMatchObject({ code: 'ERR_HANDSHAKE_FAILED' });
    }
    // And the initiator, answered with garbage.
    const { a, b } = await rawPair('tcp');
    b.attach({ onMessage: () => b.send([randomBytes(200)]), onDrain: () => {}, onClose: () => {} });
    await expect(secureInitiator(a, { staticKeys: generateStaticKeyPair(), verifyPeer: acceptAnyKey })).rejects.toMatchObject({
      code: 'ERR_HANDSHAKE_FAILED',
    });
  });

  it('fails when the prologues differ (a hub splicing two streams) or the cipher is refused', async () => {
    let p = await rawPair('memory');
    let r = await Promise.allSettled(securePairSettled(p.a, p.b, { prologue: 'stream-A' }, { prologue: 'stream-B' }));
    expect(r.map((x) => (x.status === 'rejected' ? (x.reason as { code: string }).code : 'ok'))).toEqual([
      'ERR_HANDSHAKE_FAILED',
      'ERR_HANDSHAKE_FAILED',
    ]);
    p = await rawPair('memory');
    r = await Promise.allSettled(securePairSettled(p.a, p.b, { cipher: 'AESGCM' }, { acceptCiphers: ['ChaChaPoly'] }));
    expect(r.every((x) => x.status === 'rejected' && (x.reason as { code: string }).code === 'ERR_HANDSHAKE_FAILED')).toBe(true);
  });

  it('device can require a service key it knows: ERR_HANDSHAKE_PEER_UNKNOWN otherwise', async () => {
    const service = generateStaticKeyPair();
    const { a, b } = await rawPair('tcp');
    const r = await Promise.allSettled(
      securePairSettled(a, b, { staticKeys: service }, { verifyPeer: allowKeys([generateStaticKeyPair().publicKey]) }),
    );
    expect(r[1]).toMatchObject({ status: 'rejected', reason: { code: 'ERR_HANDSHAKE_PEER_UNKNOWN' } });
    // The initiator finished its part; then the responder's alert closes it with the reason.
    expect(r[0].status).toBe('fulfilled');
    if (r[0].status === 'fulfilled') {
      const closed = await collect(r[0].value).closed;
      expect(closed).toMatchObject({ code: 'ERR_HANDSHAKE_FAILED', message: expect.stringContaining('ERR_HANDSHAKE_PEER_UNKNOWN') });
    }
  });

  it('service refuses a device whose key changed until it is re-pinned', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ds-known-'));
    try {
      const known = new KnownDevices(join(dir, 'known_devices'));
      const service = generateStaticKeyPair();
      const deviceOld = generateStaticKeyPair();
      const deviceNew = generateStaticKeyPair();
      const connect = async (device: typeof deviceOld) => {
        const { a, b, cleanup } = await rawPair('tcp');
        try {
          // service = initiator (it asked for the stream); device = responder, requiring the service key.
          return await Promise.allSettled(
            securePairSettled(
              a,
              b,
              { staticKeys: service, verifyPeer: known.verifier('dev-1') },
              { staticKeys: device, verifyPeer: allowKeys([service.publicKey]) },
            ),
          );
        } finally {
          await cleanup();
        }
      };
      expect((await connect(deviceOld)).map((x) => x.status)).toEqual(['fulfilled', 'fulfilled']);
      expect(await known.get('dev-1')).toEqual(deviceOld.publicKey);
      const changed = await connect(deviceNew);
      expect(changed[0]).toMatchObject({ status: 'rejected', reason: { code: 'ERR_HANDSHAKE_PEER_KEY_CHANGED' } });
      expect(changed[1]).toMatchObject({
        status: 'rejected',
        reason: { code: 'ERR_HANDSHAKE_FAILED', message: expect.stringContaining('ERR_HANDSHAKE_PEER_KEY_CHANGED') },
      });
      expect((await connect(deviceOld)).map((x) => x.status)).toEqual(['fulfilled', 'fulfilled']);
      await known.pin('dev-1', deviceNew.publicKey); // operator re-pins after a re-enrollment
      expect((await connect(deviceNew)).map((x) => x.status)).toEqual(['fulfilled', 'fulfilled']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('records', () => {
  it.each(modes)('rekey under a long transfer keeps every byte ($name, tcp)', async ({ opts }) => {
    const { a, b, cleanup } = await rawPair('tcp');
    try {
      const [sa, sb] = await securePair(a, b, { ...opts, rekeyRecords: 7, rekeyBytes: 100_000 }, { ...opts, rekeyRecords: 5 });
      const ea = collect(sa);
      const eb = collect(sb);
      const chunks = Array.from({ length: 96 }, (_, i) => randomBytes(1 + ((i * 7919) % MAX_RECORD_PLAINTEXT)));
      const back = Array.from({ length: 40 }, () => randomBytes(3000));
      await Promise.all([sendAll(sa, ea, chunks), sendAll(sb, eb, back)]);
      await until(() => eb.messages.length === chunks.length && ea.messages.length === back.length, 10_000);
      const digest = (xs: Buffer[]) => createHash('sha256').update(Buffer.concat(xs)).digest('hex');
      expect(digest(eb.messages)).toBe(digest(chunks));
      expect(digest(ea.messages)).toBe(digest(back));
      expect(sa.stats.sendEpoch).toBeGreaterThanOrEqual(13); // 96 records / 7 per epoch, more by bytes
      expect(sb.stats.recvEpoch).toBe(sa.stats.sendEpoch);
      expect(sb.stats.sendEpoch).toBe(7); // 40 records / 5
      expect(ea.isClosed || eb.isClosed).toBe(false);
      sa.close();
      await eb.closed;
    } finally {
      await cleanup();
    }
  });

  it('one record at a time both ways, across rekeys: each is sealed and opened with the cipher made ahead for it (inline, tcp)', async () => {
    const { a, b, cleanup } = await rawPair('tcp');
    try {
      // A new key epoch every third record one way and every fourth the other: a cipher made
      // ahead for the old epoch must not be used once the sender has moved on.
      const [sa, sb] = await securePair(a, b, { crypto: 'inline', rekeyRecords: 3 }, { crypto: 'inline', rekeyRecords: 4 });
      const ea = collect(sa);
      const eb = collect(sb);
      const pings = Array.from({ length: 24 }, (_, i) => randomBytes(1 + i * 37));
      const pongs = pings.map((p) => createHash('sha256').update(p).digest());
      for (let i = 0; i < pings.length; i++) {
        sa.send([pings[i]!]);
        await until(() => eb.messages.length === i + 1);
        sb.send([pongs[i]!]);
        await until(() => ea.messages.length === i + 1);
      }
      expect(sameMessages(eb.messages, pings)).toBe(true);
      expect(sameMessages(ea.messages, pongs)).toBe(true);
      expect(sa.stats.sendEpoch).toBe(7); // records 0-2 in epoch 0, ..., 21-23 in epoch 7
      expect(sb.stats.sendEpoch).toBe(5);
      // Every record but the first each way, and but the first of each new epoch, found its
      // cipher ready: 2 x 24 seals and 2 x 24 opens, less those.
      const fresh = 2 * (1 + 7) + 2 * (1 + 5);
      expect(sa.stats.madeAhead + sb.stats.madeAhead).toBe(4 * 24 - fresh);
      expect(ea.isClosed || eb.isClosed).toBe(false);
    } finally {
      await cleanup();
    }
  });

  it.each(modes)('an orderly close right after sending delivers every record first ($name)', async ({ opts }) => {
    const { a, b, cleanup } = await rawPair('tcp');
    try {
      const [sa, sb] = await securePair(a, b, opts, opts);
      collect(sa);
      const eb = collect(sb);
      const sent = Array.from({ length: 40 }, (_, i) => randomBytes(100 + i * 1500));
      for (const m of sent) sa.send([m]);
      sa.close();
      expect(sa.send([Buffer.from('late')])).toBe(false);
      expect(await eb.closed).toBeUndefined();
      expect(sameMessages(eb.messages, sent)).toBe(true);
    } finally {
      await cleanup();
    }
  });

  it('workers: send reports backpressure above the seal high water and drains', async () => {
    const { a, b, cleanup } = await rawPair('tcp');
    try {
      const opts = { crypto: 'workers' as const, sealHighWater: 256 * 1024 };
      const [sa, sb] = await securePair(a, b, opts, opts);
      const ea = collect(sa);
      const eb = collect(sb);
      const sent = Array.from({ length: 24 }, () => randomBytes(MAX_RECORD_PLAINTEXT));
      const results = sent.map((m) => sa.send([m]));
      expect(results[0]).toBe(true);
      expect(results.includes(false)).toBe(true);
      expect(sa.bufferedAmount).toBeGreaterThan(256 * 1024);
      await ea.waitDrain();
      await until(() => eb.messages.length === sent.length);
      expect(sameMessages(eb.messages, sent)).toBe(true);
      sa.close();
    } finally {
      await cleanup();
    }
  });

  it.each(modes)('both ends close while records are in flight: exactly one orderly onClose ($name)', async ({ opts }) => {
    const { a, b, cleanup } = await rawPair('tcp');
    try {
      const [sa, sb] = await securePair(a, b, opts, opts);
      collect(sa);
      let closes = 0;
      const got: Buffer[] = [];
      const closed = new Promise<Error | undefined>((r) =>
        sb.attach({ onMessage: (m) => got.push(m), onDrain: () => {}, onClose: (e) => (closes++, r(e)) }),
      );
      const sent = Array.from({ length: 12 }, () => randomBytes(40_000));
      for (const m of sent) sa.send([m]);
      sa.close();
      sb.close(); // racing our own close with the peer's: still exactly one onClose
      expect(await closed).toBeUndefined();
      await new Promise((r) => setTimeout(r, 20)); // kept: a second onClose, if any, has no event to wait for
      expect(closes).toBe(1);
      expect(sb.closed).toBe(true);
    } finally {
      await cleanup();
    }
  });

  it('a send larger than the record limit ends the session with ERR_RECORD_TOO_LARGE', async () => {
    const { a, b } = await rawPair('memory');
    const [sa] = await securePair(a, b);
    const ea = collect(sa);
    expect(sa.maxMessageSize).toBe(MAX_RECORD_PLAINTEXT);
    expect(sa.send([Buffer.alloc(MAX_RECORD_PLAINTEXT + 1)])).toBe(false);
    expect(await ea.closed).toMatchObject({ code: 'ERR_RECORD_TOO_LARGE' });
  });

  it("'auto' picks a mode by measurement and works", async () => {
    const { a, b } = await rawPair('memory');
    const [sa, sb] = await securePair(a, b, { crypto: 'auto' }, { crypto: 'auto' });
    expect(['inline', 'workers']).toContain(sa.session.crypto);
    const eb = collect(sb);
    collect(sa);
    sa.send([Buffer.from('x')]);
    await until(() => eb.messages.length === 1);
    sa.close();
  });
});

/** Like securePair but returns the two promises, for tests that expect failures. */
function securePairSettled(a: Parameters<typeof secureInitiator>[0], b: Parameters<typeof secureInitiator>[0], ao: object, bo: object) {
  return [
    secureInitiator(a, { staticKeys: generateStaticKeyPair(), verifyPeer: acceptAnyKey, handshakeTimeoutMs: 3000, ...ao }),
    secureResponder(b, { staticKeys: generateStaticKeyPair(), verifyPeer: acceptAnyKey, handshakeTimeoutMs: 3000, ...bo }),
  ] as const;
}
