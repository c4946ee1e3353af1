// Noise XX against the published cacophony/snow test vector, plus key files and trust policies.
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NoiseXX } from '../src/crypto/noise.js';
import {
  generateStaticKeyPair,
  keyPairFromPrivate,
  loadStaticKeyPair,
  privateKeyObject,
  saveStaticKeyPair,
  encodePublicKey,
  decodePublicKey,
} from '../src/crypto/keys.js';
import { KnownDevices, allowKeys, expectKey } from '../src/crypto/trust.js';
import { hasCode } from '../src/errors.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');

// cacophony.txt vector "Noise_XX_25519_AESGCM_SHA256" (the handshake messages and final hash).
const V = {
  prologue: '4a6f686e2047616c74',
  initStatic: 'e61ef9919cde45dd5f82166404bd08e38bceb5dfdfded0a34c8df7ed542214d1',
  initEphemeral: '893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a',
  respStatic: '4a3acbfdb163dec651dfa3194dece676d437029c62a408b4c5ea9114246e4893',
  respEphemeral: 'bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b',
  handshakeHash: '1b7aefb1125762aa21a252890d00af54519638b76437444538f9a52f21e2e0dc',
  messages: [
    [
      '4c756477696720766f6e204d69736573',
      'ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c79444c756477696720766f6e204d69736573',
    ],
    [
      '4d757272617920526f746862617264',
      '95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843757117acceb05bd7a45733bc22015c97a9d0cbaf41b80446d5988ff5127235d76b79eade70f473d6a4ef521fdcbeda5340d01e028ba793fc059f2724a83af05f12dda0448a7621a926b379a92477fd',
    ],
    [
      '462e20412e20486179656b',
      'c90f1cf77eba4e50edb038991565e36c9758943a989229b6051244dc4fbecb6946744b401af2ee1a5881b65fbb87fd07cb6a328ececc9ce6ce84c399dc332d4fd521fa4bb7f467ce909395',
    ],
  ],
} as const;

describe('Noise_XX_25519_AESGCM_SHA256', () => {
  it('matches the cacophony test vector byte for byte', () => {
    const init = new NoiseXX({
      initiator: true,
      cipher: 'AESGCM',
      prologue: hex(V.prologue),
      staticKeys: keyPairFromPrivate(hex(V.initStatic)),
      ephemeralKeys: keyPairFromPrivate(hex(V.initEphemeral)),
    });
    const resp = new NoiseXX({
      initiator: false,
      cipher: 'AESGCM',
      prologue: hex(V.prologue),
      staticKeys: keyPairFromPrivate(hex(V.respStatic)),
      ephemeralKeys: keyPairFromPrivate(hex(V.respEphemeral)),
    });
    const [m1, m2, m3] = V.messages;
    const w1 = init.writeMessage(hex(m1[0]));
    expect(w1.toString('hex')).toBe(m1[1]);
    expect(resp.readMessage(w1).toString('hex')).toBe(m1[0]);
    const w2 = resp.writeMessage(hex(m2[0]));
    expect(w2.toString('hex')).toBe(m2[1]);
    expect(init.readMessage(w2).toString('hex')).toBe(m2[0]);
    const w3 = init.writeMessage(hex(m3[0]));
    expect(w3.toString('hex')).toBe(m3[1]);
    expect(resp.readMessage(w3).toString('hex')).toBe(m3[0]);
    expect(init.handshakeHash.toString('hex')).toBe(V.handshakeHash);
    expect(resp.handshakeHash.toString('hex')).toBe(V.handshakeHash);
    expect(init.split()).toEqual(resp.split());
    expect(resp.remoteStatic).toEqual(keyPairFromPrivate(hex(V.initStatic)).publicKey);
  });

  it('ChaChaPoly variant completes and both sides agree', () => {
    const a = new NoiseXX({ initiator: true, cipher: 'ChaChaPoly', prologue: Buffer.from('p'), staticKeys: generateStaticKeyPair() });
    const b = new NoiseXX({ initiator: false, cipher: 'ChaChaPoly', prologue: Buffer.from('p'), staticKeys: generateStaticKeyPair() });
    b.readMessage(a.writeMessage());
    a.readMessage(b.writeMessage());
    b.readMessage(a.writeMessage());
    expect(a.split()).toEqual(b.split());
  });

  it('a different prologue breaks the handshake at message 2', () => {
    const a = new NoiseXX({ initiator: true, cipher: 'AESGCM', prologue: Buffer.from('stream-1'), staticKeys: generateStaticKeyPair() });
    const b = new NoiseXX({ initiator: false, cipher: 'AESGCM', prologue: Buffer.from('stream-2'), staticKeys: generateStaticKeyPair() });
    b.readMessage(a.writeMessage());
    let err: unknown;
    try {
      a.readMessage(b.writeMessage());
    } catch (e) {
      err = e;
    }
    expect(hasCode(err, 'ERR_HANDSHAKE_FAILED')).toBe(true);
  });
});

describe('static keys and trust', () => {
  const dirs: string[] = [];
  const tmp = async (): Promise<string> => {
    const d = await mkdtemp(join(tmpdir(), 'ds-crypto-'));
    dirs.push(d);
    return d;
  };
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('saves a key pair as PEM with mode 0600 and loads it back; refuses a world-readable file', async () => {
    const dir = await tmp();
    const pair = generateStaticKeyPair();
    const file = join(dir, 'device.key');
    await saveStaticKeyPair(file, pair);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await loadStaticKeyPair(file)).toEqual(pair);
    const raw = join(dir, 'raw.key');
    await writeFile(raw, pair.privateKey.toString('base64'), { mode: 0o600 });
    expect(await loadStaticKeyPair(raw)).toEqual(pair);
    const open = join(dir, 'open.key');
    await writeFile(open, pair.privateKey.toString('base64'), { mode: 0o644 });
    await expect(loadStaticKeyPair(open)).rejects.toMatchObject({ code: 'ERR_CONFIG' });
    expect(decodePublicKey(encodePublicKey(pair.publicKey))).toEqual(pair.publicKey);
    // A PEM key of another type, and raw keys of the wrong length, are refused.
    const ed = join(dir, 'ed25519.key');
    await writeFile(ed, generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    await expect(loadStaticKeyPair(ed)).rejects.toMatchObject({ code: 'ERR_CONFIG' });
    expect(() => keyPairFromPrivate(Buffer.alloc(31, 1))).toThrow(/32 bytes/);
    expect(() => privateKeyObject({ publicKey: pair.publicKey, privateKey: Buffer.concat([pair.privateKey, Buffer.alloc(1)]) })).toThrow(
      /32 bytes/,
    );
  });

  it('a generated key pair is consistent: its public key is the one node:crypto derives', () => {
    const pair = generateStaticKeyPair();
    const derived = createPublicKey(privateKeyObject(pair)).export({ format: 'jwk' }).x;
    expect(Buffer.from(derived!, 'base64url')).toEqual(pair.publicKey);
    expect(generateStaticKeyPair().privateKey).not.toEqual(pair.privateKey);
  });

  it('known-devices: pins on first use, refuses a changed key loudly, accepts after re-pin', async () => {
    const known = new KnownDevices(join(await tmp(), 'known_devices'));
    const k1 = generateStaticKeyPair().publicKey;
    const k2 = generateStaticKeyPair().publicKey;
    expect(await known.verify('dev-1', k1)).toBe('pinned');
    expect(await known.verify('dev-1', k1)).toBe('match');
    await expect(known.verify('dev-1', k2)).rejects.toMatchObject({ code: 'ERR_HANDSHAKE_PEER_KEY_CHANGED' });
    await expect(known.verify('dev-2', k2, false)).rejects.toMatchObject({ code: 'ERR_HANDSHAKE_PEER_UNKNOWN' });
    await known.pin('dev-1', k2);
    expect(await known.verify('dev-1', k2)).toBe('match');
    expect(await known.get('dev-1')).toEqual(k2);
  });

  it('known-devices: concurrent first contacts of several devices all get pinned; comments survive', async () => {
    const file = join(await tmp(), 'known_devices');
    await writeFile(file, '# operator notes\n');
    const known = new KnownDevices(file);
    const keys = Array.from({ length: 8 }, () => generateStaticKeyPair().publicKey);
    await Promise.all(keys.map((k, i) => known.verify(`dev-${i}`, k)));
    for (let i = 0; i < keys.length; i++) expect(await known.get(`dev-${i}`)).toEqual(keys[i]);
    const racing = await Promise.allSettled([known.verify('new', keys[0]!), known.verify('new', keys[1]!)]);
    expect(racing.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as { code: string }).code))).toEqual([
      'pinned',
      'ERR_HANDSHAKE_PEER_KEY_CHANGED',
    ]);
    await known.remove('dev-3');
    expect(await known.get('dev-3')).toBeUndefined();
    expect((await readFile(file, 'utf8')).startsWith('# operator notes\n')).toBe(true);
  });

  it('expectKey and allowKeys refuse other keys with ERR_HANDSHAKE_PEER_UNKNOWN', () => {
    const k1 = generateStaticKeyPair().publicKey;
    const k2 = generateStaticKeyPair().publicKey;
    expect(() => expectKey(encodePublicKey(k1))(k1)).not.toThrow();
    expect(() => expectKey(k1)(k2)).toThrow(expect.objectContaining({ code: 'ERR_HANDSHAKE_PEER_UNKNOWN' }));
    expect(() => allowKeys([k1])(k2)).toThrow(expect.objectContaining({ code: 'ERR_HANDSHAKE_PEER_UNKNOWN' }));
    expect(() => allowKeys([k2, k1])(k1)).not.toThrow();
  });
});
