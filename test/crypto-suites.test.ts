// Record suite negotiation over real TCP pairs: new/new picks the first suite of the initiator
// that the responder allows; a peer from before suites (simulated here byte for byte: empty
// Noise payloads, records sealed with the handshake's cipher) still talks to a new one either
// way round; an unknown or unoffered suite is refused; a hub stripping the offer is caught.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openParts, recordNonce, sealParts, type CipherName, type RecordSuite } from '../src/crypto/aead.js';
import { MAX_RECORD_PLAINTEXT, RECORD_HEADER_SIZE, TAG_SIZE } from '../src/crypto/constants.js';
import { buildPrologue, EXT_RECORD_SUITES, encodeExtensions, SUITE_IDS } from '../src/crypto/handshake.js';
import { KeySchedule } from '../src/crypto/key-schedule.js';
import { generateStaticKeyPair } from '../src/crypto/keys.js';
import { NoiseXX } from '../src/crypto/noise.js';
import { decodeRecordHeader, encodeRecordHeader } from '../src/crypto/record-format.js';
import { secureInitiator, secureResponder } from '../src/crypto/secure-transport.js';
import { acceptAnyKey } from '../src/crypto/trust.js';
import { closeCryptoPools } from '../src/crypto/worker-pool.js';
import type { Transport } from '../src/transport/transport.js';
import { collect, ensureCryptoWorkerBuilt, rawPair, relayPair, sameMessages, securePair, until } from './crypto-helpers.js';

beforeAll(() => ensureCryptoWorkerBuilt());
afterAll(async () => closeCryptoPools());

const PROLOGUE = 'test-stream';
const CIPHER_ID: Record<CipherName, number> = { AESGCM: 1, ChaChaPoly: 2 };
const SUITES: RecordSuite[] = ['aes-128-gcm', 'aes-256-gcm', 'chacha20-poly1305'];

/** A peer written against the raw wire: handshake messages by hand, records by hand. */
class RawPeer {
  private queue: Buffer[] = [];
  private waiters: Array<(m: Buffer) => void> = [];
  constructor(readonly t: Transport) {
    t.attach({
      onMessage: (m) => this.push(m),
      onMessageParts: (parts) => this.push(Buffer.concat(parts)),
      onDrain: () => {},
      onClose: () => {},
    });
  }
  private push(m: Buffer): void {
    const w = this.waiters.shift();
    if (w) w(m);
    else this.queue.push(m);
  }
  next(): Promise<Buffer> {
    const m = this.queue.shift();
    return m ? Promise.resolve(m) : new Promise((r) => this.waiters.push(r));
  }
  sendHandshake(type: number, cipher: CipherName, noise: Buffer): void {
    this.t.send([Buffer.from([type, 1, CIPHER_ID[cipher]]), noise]);
  }
}

/** Record keys of one side after a hand-run handshake. */
function recordKeys(noise: NoiseXX, initiator: boolean, suite: RecordSuite) {
  const [i2r, r2i] = noise.split();
  return { send: new KeySchedule(initiator ? i2r : r2i, suite), recv: new KeySchedule(initiator ? r2i : i2r, suite) };
}

function sealRecord(keys: KeySchedule, suite: RecordSuite, seq: number, plain: Buffer): Buffer {
  const header = encodeRecordHeader(0, seq);
  return Buffer.concat(sealParts(suite, keys.keys.key, recordNonce(keys.keys.iv, seq), header, [plain], [header]));
}

function openRecord(keys: KeySchedule, suite: RecordSuite, record: Buffer): Buffer | null {
  const h = decodeRecordHeader(record);
  if (!h) return null;
  const plain = openParts(
    suite,
    keys.keys.key,
    recordNonce(keys.keys.iv, h.seq),
    record.subarray(0, RECORD_HEADER_SIZE),
    [record.subarray(RECORD_HEADER_SIZE, record.length - TAG_SIZE)],
    record.subarray(record.length - TAG_SIZE),
  );
  return plain ? Buffer.concat(plain) : null;
}

/**
 * A responder as it was before suites: reads message 1 ignoring its payload, answers with empty
 * payloads, seals records with the handshake's cipher.
 */
async function oldResponder(peer: RawPeer, cipher: CipherName) {
  const noise = new NoiseXX({
    initiator: false,
    cipher,
    prologue: buildPrologue(Buffer.from(PROLOGUE)),
    staticKeys: generateStaticKeyPair(),
  });
  noise.readMessage((await peer.next()).subarray(3));
  peer.sendHandshake(2, cipher, noise.writeMessage());
  noise.readMessage((await peer.next()).subarray(3));
  return noise;
}

/** An initiator as it was before suites (empty payloads), or one sending `payload1` in message 1. */
async function handRolledInitiator(peer: RawPeer, cipher: CipherName, payload1?: Buffer) {
  const noise = new NoiseXX({
    initiator: true,
    cipher,
    prologue: buildPrologue(Buffer.from(PROLOGUE)),
    staticKeys: generateStaticKeyPair(),
  });
  peer.sendHandshake(1, cipher, noise.writeMessage(payload1));
  const m2 = await peer.next();
  if (m2[0] !== 2) return { noise, refusal: m2 };
  const payload2 = noise.readMessage(m2.subarray(3));
  peer.sendHandshake(3, cipher, noise.writeMessage());
  return { noise, payload2 };
}

const options = (o: object = {}) => ({ staticKeys: generateStaticKeyPair(), verifyPeer: acceptAnyKey, prologue: PROLOGUE, ...o });

describe('record suites between new peers', () => {
  it('default: both offer and allow every suite and agree on AES-128-GCM', async () => {
    const { a, b, cleanup } = await rawPair('tcp');
    try {
      const [sa, sb] = await securePair(a, b);
      expect(sa.session.suite).toBe('aes-128-gcm');
      expect(sb.session.suite).toBe('aes-128-gcm');
      expect(sa.session.protocolName).toBe('Noise_XX_25519_AESGCM_SHA256');
      sa.close();
    } finally {
      await cleanup();
    }
  });

  it("the initiator's order decides among the suites the responder allows", async () => {
    const { a, b, cleanup } = await rawPair('tcp');
    try {
      const [sa, sb] = await securePair(
        a,
        b,
        { suites: ['chacha20-poly1305', 'aes-128-gcm'] },
        { suites: ['aes-128-gcm', 'aes-256-gcm', 'chacha20-poly1305'] },
      );
      expect([sa.session.suite, sb.session.suite]).toEqual(['chacha20-poly1305', 'chacha20-poly1305']);
      sa.close();
    } finally {
      await cleanup();
    }
  });

  it('no suite in common: the responder refuses and the initiator hears why', async () => {
    const { a, b, cleanup } = await rawPair('tcp');
    try {
      const r = await Promise.allSettled([
        secureInitiator(a, options({ suites: ['aes-128-gcm'] })),
        secureResponder(b, options({ suites: ['aes-256-gcm'] })),
      ]);
      expect(r[1]).toMatchObject({ status: 'rejected', reason: { code: 'ERR_HANDSHAKE_FAILED' } });
      expect(String((r[1] as PromiseRejectedResult).reason.message)).toMatch(/no record suite in common/);
      expect(r[0]).toMatchObject({ status: 'rejected', reason: { code: 'ERR_HANDSHAKE_FAILED' } });
      expect(String((r[0] as PromiseRejectedResult).reason.message)).toMatch(/ERR_HANDSHAKE_FAILED/);
    } finally {
      await cleanup();
    }
  });

  it('an unknown record suite in the options is a config error', async () => {
    const { a, cleanup } = await rawPair('tcp');
    try {
      await expect(secureInitiator(a, options({ suites: ['aes-192-gcm'] }))).rejects.toMatchObject({ code: 'ERR_CONFIG' });
    } finally {
      await cleanup();
    }
  });

  describe.each(SUITES)('records under %s', (suite) => {
    it.each(['inline', 'workers'] as const)('round trip both ways, small and full records (%s)', async (crypto) => {
      const { a, b, cleanup } = await rawPair('tcp');
      try {
        const [sa, sb] = await securePair(a, b, { suites: [suite], crypto }, { suites: [suite], crypto });
        expect([sa.session.suite, sb.session.suite]).toEqual([suite, suite]);
        const ea = collect(sa);
        const eb = collect(sb);
        const msgs = [Buffer.from('x'), randomBytes(MAX_RECORD_PLAINTEXT), Buffer.alloc(0), randomBytes(5000)];
        for (const m of msgs) sa.send([m]);
        for (const m of msgs) sb.send([m]);
        await until(() => ea.messages.length === msgs.length && eb.messages.length === msgs.length);
        expect(sameMessages(eb.messages, msgs)).toBe(true);
        expect(sameMessages(ea.messages, msgs)).toBe(true);
        sa.close();
        await eb.closed;
      } finally {
        await cleanup();
      }
    });
  });
});

describe('a peer from before suites', () => {
  it.each(['AESGCM', 'ChaChaPoly'] as const)('new service, old device (%s): records sealed with the handshake cipher', async (cipher) => {
    const { a, b, cleanup } = await rawPair('tcp');
    try {
      const old = new RawPeer(b);
      const [sa, noise] = await Promise.all([secureInitiator(a, options({ cipher })), oldResponder(old, cipher)]);
      const legacy: RecordSuite = cipher === 'AESGCM' ? 'aes-256-gcm' : 'chacha20-poly1305';
      expect(sa.session.suite).toBe(legacy);
      const keys = recordKeys(noise, false, legacy);
      const ea = collect(sa);
      const big = randomBytes(MAX_RECORD_PLAINTEXT);
      sa.send([Buffer.from('to the old device')]);
      sa.send([big]);
      expect(openRecord(keys.recv, legacy, await old.next())?.toString()).toBe('to the old device');
      expect(openRecord(keys.recv, legacy, await old.next())?.equals(big)).toBe(true);
      old.t.send([sealRecord(keys.send, legacy, 0, Buffer.from('from the old device'))]);
      await until(() => ea.messages.length === 1);
      expect(ea.messages[0]!.toString()).toBe('from the old device');
      sa.close();
    } finally {
      await cleanup();
    }
  });

  it('old service, new device: the device seals with the handshake cipher', async () => {
    const { a, b, cleanup } = await rawPair('tcp');
    try {
      const old = new RawPeer(a);
      const [hs, sb] = await Promise.all([handRolledInitiator(old, 'AESGCM'), secureResponder(b, options())]);
      expect(hs.payload2?.length).toBe(0); // no choice sent to a peer that made no offer
      expect(sb.session.suite).toBe('aes-256-gcm');
      const keys = recordKeys(hs.noise, true, 'aes-256-gcm');
      const eb = collect(sb);
      old.t.send([sealRecord(keys.send, 'aes-256-gcm', 0, Buffer.from('from the old service'))]);
      await until(() => eb.messages.length === 1);
      expect(eb.messages[0]!.toString()).toBe('from the old service');
      sb.send([Buffer.from('to the old service')]);
      expect(openRecord(keys.recv, 'aes-256-gcm', await old.next())?.toString()).toBe('to the old service');
      sb.close();
    } finally {
      await cleanup();
    }
  });

  it('a new device that does not allow the old default refuses the old service', async () => {
    const { a, b, cleanup } = await rawPair('tcp');
    try {
      const old = new RawPeer(a);
      const [hs, r] = await Promise.all([
        handRolledInitiator(old, 'AESGCM'),
        secureResponder(b, options({ suites: ['aes-128-gcm'] })).catch((e: Error) => e),
      ]);
      expect(hs.refusal?.[0]).toBe(0x15);
      expect(r).toMatchObject({ code: 'ERR_HANDSHAKE_FAILED' });
      expect((r as Error).message).toMatch(/does not negotiate record suites/);
    } finally {
      await cleanup();
    }
  });
});

describe('refusals', () => {
  it('an offer of only unknown suites is refused by the responder', async () => {
    const { a, b, cleanup } = await rawPair('tcp');
    try {
      const peer = new RawPeer(a);
      const offer = encodeExtensions(new Map([[EXT_RECORD_SUITES, Buffer.from([99, 200])]]));
      const [hs, r] = await Promise.all([handRolledInitiator(peer, 'AESGCM', offer), secureResponder(b, options()).catch((e: Error) => e)]);
      expect(hs.refusal?.[0]).toBe(0x15);
      expect(r).toMatchObject({ code: 'ERR_HANDSHAKE_FAILED' });
      expect((r as Error).message).toMatch(/initiator offers unknown suite 99, unknown suite 200/);
    } finally {
      await cleanup();
    }
  });

  it('unknown suites in an offer are skipped for a known one after them', async () => {
    const { a, b, cleanup } = await rawPair('tcp');
    try {
      const peer = new RawPeer(a);
      const offer = encodeExtensions(new Map([[EXT_RECORD_SUITES, Buffer.from([99, SUITE_IDS['chacha20-poly1305']])]]));
      const [hs, sb] = await Promise.all([handRolledInitiator(peer, 'AESGCM', offer), secureResponder(b, options())]);
      expect(sb.session.suite).toBe('chacha20-poly1305');
      expect(hs.payload2).toEqual(encodeExtensions(new Map([[EXT_RECORD_SUITES, Buffer.from([SUITE_IDS['chacha20-poly1305']])]])));
      sb.close();
    } finally {
      await cleanup();
    }
  });

  it.each([
    ['a suite it did not offer', Buffer.from([SUITE_IDS['aes-128-gcm']])],
    ['an unknown suite', Buffer.from([77])],
    ['two suites', Buffer.from([SUITE_IDS['aes-256-gcm'], SUITE_IDS['aes-256-gcm']])],
  ])('the initiator refuses a responder that chose %s', async (_what, choice) => {
    const { a, b, cleanup } = await rawPair('tcp');
    try {
      const peer = new RawPeer(b);
      const responder = (async () => {
        const noise = new NoiseXX({
          initiator: false,
          cipher: 'AESGCM',
          prologue: buildPrologue(Buffer.from(PROLOGUE)),
          staticKeys: generateStaticKeyPair(),
        });
        noise.readMessage((await peer.next()).subarray(3));
        peer.sendHandshake(2, 'AESGCM', noise.writeMessage(encodeExtensions(new Map([[EXT_RECORD_SUITES, choice]]))));
        return peer.next(); // the initiator's alert
      })();
      const [r, alert] = await Promise.all([secureInitiator(a, options({ suites: ['aes-256-gcm'] })).catch((e: Error) => e), responder]);
      expect(r).toMatchObject({ code: 'ERR_HANDSHAKE_FAILED' });
      expect((r as Error).message).toMatch(/which we did not offer/);
      expect(alert[0]).toBe(0x15);
    } finally {
      await cleanup();
    }
  });

  it('a hub that strips the offer from message 1 (a downgrade) fails the handshake', async () => {
    // Rewrites message 1 as a peer from before suites would send it: the Noise payload dropped.
    const { a, b, cleanup } = await relayPair('tcp', (direction, index, m) =>
      direction === 'ab' && index === 0 ? [m.subarray(0, 3 + 32)] : [m],
    );
    try {
      const r = await Promise.allSettled([secureInitiator(a, options()), secureResponder(b, options())]);
      expect(r[0]).toMatchObject({ status: 'rejected', reason: { code: 'ERR_HANDSHAKE_FAILED' } });
      expect(r[1].status).toBe('rejected');
    } finally {
      await cleanup();
    }
  });
});
