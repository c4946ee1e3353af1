/**
 * The Noise XX handshake (noise_spec rev 34), exactly: Noise_XX_25519_{AESGCM|ChaChaPoly}_SHA256.
 *   -> e
 *   <- e, ee, s, es
 *   -> s, se
 * Pure and synchronous: bytes in, bytes out, no I/O. `split()` gives the two directions' traffic
 * secrets that the record layer's key schedule starts from.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, type KeyObject } from 'node:crypto';
import { DevstreamsError } from '../errors.js';
import { LEGACY_SUITE, type CipherName } from './aead.js';
import { dh, generateStaticKeyPair, privateKeyObject, type StaticKeyPair } from './keys.js';

const HASHLEN = 32;
const DHLEN = 32;
const TAG = 16;
const EMPTY = Buffer.alloc(0);

/** Full Noise protocol name for a cipher. */
export function noiseProtocolName(cipher: CipherName): string {
  return `Noise_XX_25519_${cipher}_SHA256`;
}

const sha256 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const hmac = (key: Buffer, ...parts: Buffer[]): Buffer => {
  const h = createHmac('sha256', key);
  for (const p of parts) h.update(p);
  return h.digest();
};

/** Noise HKDF(chaining_key, ikm) with two outputs (§4.3). */
function hkdf2(ck: Buffer, ikm: Buffer): [Buffer, Buffer] {
  const temp = hmac(ck, ikm);
  const out1 = hmac(temp, Buffer.from([1]));
  const out2 = hmac(temp, out1, Buffer.from([2]));
  return [out1, out2];
}

function fail(message: string): DevstreamsError {
  return new DevstreamsError('ERR_HANDSHAKE_FAILED', message);
}

/** Noise SymmetricState with its CipherState (§5.1, §5.2). */
class SymmetricState {
  ck: Buffer;
  h: Buffer;
  private k: Buffer | undefined;
  private n = 0;

  constructor(
    private readonly cipher: CipherName,
    protocolName: string,
  ) {
    const name = Buffer.from(protocolName, 'ascii');
    this.h = name.length <= HASHLEN ? Buffer.concat([name, Buffer.alloc(HASHLEN - name.length)]) : sha256(name);
    this.ck = Buffer.from(this.h);
  }

  mixHash(data: Buffer): void {
    this.h = sha256(this.h, data);
  }

  mixKey(ikm: Buffer): void {
    const [ck, tempK] = hkdf2(this.ck, ikm);
    this.ck = ck;
    this.k = tempK; // HASHLEN is 32, so no truncation is needed
    this.n = 0;
  }

  private nonce(): Buffer {
    const nonce = Buffer.alloc(12);
    if (this.cipher === 'AESGCM') nonce.writeBigUInt64BE(BigInt(this.n), 4);
    else nonce.writeBigUInt64LE(BigInt(this.n), 4);
    return nonce;
  }

  encryptAndHash(plaintext: Buffer): Buffer {
    if (!this.k) {
      this.mixHash(plaintext);
      return plaintext;
    }
    const c = createCipheriv(LEGACY_SUITE[this.cipher] as 'aes-256-gcm', this.k, this.nonce(), { authTagLength: TAG });
    c.setAAD(this.h);
    const out = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
    this.n++;
    this.mixHash(out);
    return out;
  }

  decryptAndHash(ciphertext: Buffer): Buffer {
    if (!this.k) {
      this.mixHash(ciphertext);
      return ciphertext;
    }
    if (ciphertext.length < TAG) throw fail('handshake ciphertext shorter than its tag');
    const d = createDecipheriv(LEGACY_SUITE[this.cipher] as 'aes-256-gcm', this.k, this.nonce(), { authTagLength: TAG });
    d.setAAD(this.h);
    d.setAuthTag(ciphertext.subarray(ciphertext.length - TAG));
    const plain = d.update(ciphertext.subarray(0, ciphertext.length - TAG));
    try {
      d.final();
    } catch {
      throw fail('handshake message failed authentication (wrong key, prologue or cipher, or tampered)');
    }
    this.n++;
    this.mixHash(ciphertext);
    return plain;
  }

  split(): [Buffer, Buffer] {
    return hkdf2(this.ck, EMPTY);
  }

  get hasKey(): boolean {
    return this.k !== undefined;
  }
}

/** Inputs of one side of a Noise XX handshake. */
export interface NoiseXXOptions {
  initiator: boolean;
  cipher: CipherName;
  /** Bytes both sides must agree on (protocol version, stream id); mixed into h before message 1. */
  prologue: Buffer;
  /** This side's static key pair. */
  staticKeys: StaticKeyPair;
  /** Fixed ephemeral key pair, for test vectors only. */
  ephemeralKeys?: StaticKeyPair;
}

/** One XX handshake. Call write/read in pattern order; then `split()`. */
export class NoiseXX {
  private readonly ss: SymmetricState;
  private readonly initiator: boolean;
  private readonly s: StaticKeyPair;
  private readonly sPriv: KeyObject;
  private readonly e: StaticKeyPair;
  private readonly ePriv: KeyObject;
  private re: Buffer | undefined;
  private rs: Buffer | undefined;
  /** Index of the next message in the pattern: 0, 1, 2, then 3 = done. */
  private step = 0;

  constructor(options: NoiseXXOptions) {
    this.initiator = options.initiator;
    this.ss = new SymmetricState(options.cipher, noiseProtocolName(options.cipher));
    this.ss.mixHash(options.prologue);
    this.s = options.staticKeys;
    this.sPriv = privateKeyObject(this.s);
    this.e = options.ephemeralKeys ?? generateStaticKeyPair();
    this.ePriv = privateKeyObject(this.e);
  }

  /** The peer's static public key, once received (message 2 for the initiator, 3 for the responder). */
  get remoteStatic(): Buffer | undefined {
    return this.rs;
  }

  /** The handshake hash (channel binding), final after message 3. */
  get handshakeHash(): Buffer {
    return this.ss.h;
  }

  get complete(): boolean {
    return this.step === 3;
  }

  /** True when it is this side's turn to write. */
  get myTurn(): boolean {
    return this.step < 3 && (this.step % 2 === 0) === this.initiator;
  }

  /** Writes the next handshake message carrying `payload`. */
  writeMessage(payload: Buffer = EMPTY): Buffer {
    if (!this.myTurn) throw fail('handshake write out of turn');
    const out: Buffer[] = [];
    switch (this.step) {
      case 0: // -> e
        out.push(this.e.publicKey);
        this.ss.mixHash(this.e.publicKey);
        break;
      case 1: // <- e, ee, s, es
        out.push(this.e.publicKey);
        this.ss.mixHash(this.e.publicKey);
        this.ss.mixKey(dh(this.ePriv, this.re!));
        out.push(this.ss.encryptAndHash(this.s.publicKey));
        this.ss.mixKey(dh(this.sPriv, this.re!));
        break;
      case 2: // -> s, se
        out.push(this.ss.encryptAndHash(this.s.publicKey));
        this.ss.mixKey(dh(this.sPriv, this.re!));
        break;
    }
    out.push(this.ss.encryptAndHash(payload));
    this.step++;
    return Buffer.concat(out);
  }

  /** Reads the peer's next handshake message and returns its payload; throws ERR_HANDSHAKE_FAILED. */
  readMessage(message: Buffer): Buffer {
    if (this.myTurn || this.step >= 3) throw fail('handshake read out of turn');
    let at = 0;
    const take = (n: number): Buffer => {
      if (message.length - at < n) throw fail('handshake message too short');
      const part = message.subarray(at, at + n);
      at += n;
      return part;
    };
    const sLen = (): number => DHLEN + (this.ss.hasKey ? TAG : 0);
    switch (this.step) {
      case 0: // -> e
        this.re = Buffer.from(take(DHLEN));
        this.ss.mixHash(this.re);
        break;
      case 1: // <- e, ee, s, es
        this.re = Buffer.from(take(DHLEN));
        this.ss.mixHash(this.re);
        this.ss.mixKey(dh(this.ePriv, this.re));
        this.rs = Buffer.from(this.ss.decryptAndHash(take(sLen())));
        this.ss.mixKey(dh(this.ePriv, this.rs));
        break;
      case 2: // -> s, se
        this.rs = Buffer.from(this.ss.decryptAndHash(take(sLen())));
        this.ss.mixKey(dh(this.ePriv, this.rs));
        break;
    }
    const payload = this.ss.decryptAndHash(Buffer.from(message.subarray(at)));
    this.step++;
    return payload;
  }

  /** Traffic secrets [initiator->responder, responder->initiator]; only after message 3. */
  split(): [Buffer, Buffer] {
    if (!this.complete) throw fail('split before the handshake completed');
    return this.ss.split();
  }
}
