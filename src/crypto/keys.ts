/**
 * X25519 key pairs as raw 32-byte buffers, conversion to node:crypto KeyObjects, and the
 * device's static key file (created at enrollment, PKCS#8 PEM, mode 0600). Public keys travel
 * and are pinned as base64 of the 32 raw bytes.
 */
import { createPrivateKey, createPublicKey, diffieHellman, randomBytes, type KeyObject } from 'node:crypto';
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { DevstreamsError } from '../errors.js';

/** An X25519 key pair as raw bytes. */
export interface StaticKeyPair {
  /** 32 bytes. */
  publicKey: Buffer;
  /** 32 bytes; keep secret. */
  privateKey: Buffer;
}

/** DER prefixes of an X25519 key: PKCS#8 private key and SubjectPublicKeyInfo (RFC 8410). */
const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');

/**
 * Generates a fresh X25519 key pair: 32 random bytes are a private key (X25519 clamps the
 * scalar itself, RFC 7748 5). Not `generateKeyPairSync`, and no JWK export anywhere here: on
 * Node 20 the key-generation job's destructor takes the key's mutex, and a JWK export holds that
 * mutex while it allocates, so a garbage collection at that moment deadlocked the process
 * (seen here about once in a dozen runs of a short worker-pool test).
 */
export function generateStaticKeyPair(): StaticKeyPair {
  return keyPairFromPrivate(randomBytes(32));
}

/** The raw key pair of an X25519 private KeyObject, through DER (fixed prefix, 32 raw bytes). */
function fromPrivateKeyObject(privateKey: KeyObject): StaticKeyPair {
  if (privateKey.asymmetricKeyType !== 'x25519') throw new DevstreamsError('ERR_CONFIG', 'not an X25519 private key');
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  if (pkcs8.length !== PKCS8_PREFIX.length + 32 || spki.length !== SPKI_PREFIX.length + 32)
    throw new DevstreamsError('ERR_CONFIG', 'not an X25519 private key');
  return { publicKey: Buffer.from(spki.subarray(SPKI_PREFIX.length)), privateKey: Buffer.from(pkcs8.subarray(PKCS8_PREFIX.length)) };
}

/** node:crypto KeyObject of a raw X25519 public key. */
export function publicKeyObject(raw: Buffer): KeyObject {
  if (raw.length !== 32) throw new DevstreamsError('ERR_HANDSHAKE_FAILED', 'X25519 public key must be 32 bytes');
  return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** node:crypto KeyObject of a raw X25519 key pair's private half. */
export function privateKeyObject(pair: StaticKeyPair): KeyObject {
  if (pair.privateKey.length !== 32) throw new DevstreamsError('ERR_CONFIG', 'an X25519 private key is 32 bytes');
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, pair.privateKey]), format: 'der', type: 'pkcs8' });
}

/** X25519(private, public) -> 32-byte shared secret; rejects an all-zero result (low-order point). */
export function dh(privateKey: KeyObject, remotePublic: Buffer): Buffer {
  const out = diffieHellman({ privateKey, publicKey: publicKeyObject(remotePublic) });
  if (out.every((b) => b === 0)) throw new DevstreamsError('ERR_HANDSHAKE_FAILED', 'peer sent a low-order X25519 point');
  return out;
}

/** Public key as the base64 text used in files, logs and the hub registry. */
export function encodePublicKey(raw: Buffer): string {
  return raw.toString('base64');
}

/** Parses a base64 (or base64url) public key; must decode to 32 bytes. */
export function decodePublicKey(text: string): Buffer {
  const t = text.trim();
  const raw = Buffer.from(t, t.includes('-') || t.includes('_') ? 'base64url' : 'base64');
  // Node's decoder skips what it cannot read (anything after the padding, stray characters), so
  // a key is only taken when it encodes back to exactly what was written: a line with trailing
  // garbage is not a key, whatever 32 bytes it happens to start with.
  const canonical = raw.toString('base64');
  if (raw.length !== 32 || (t !== canonical && t !== canonical.replace(/=+$/, '') && t !== raw.toString('base64url'))) {
    throw new DevstreamsError('ERR_CONFIG', 'a public key is 32 bytes in base64');
  }
  return raw;
}

/** Writes the key pair's private key as PKCS#8 PEM with file mode 0600. */
export async function saveStaticKeyPair(path: string, pair: StaticKeyPair): Promise<void> {
  const pem = privateKeyObject(pair).export({ format: 'pem', type: 'pkcs8' });
  await writeFile(path, pem, { mode: 0o600 });
  await chmod(path, 0o600); // writeFile keeps an existing file's mode
}

/**
 * Loads a key pair saved by `saveStaticKeyPair` (PEM), or a file holding the raw private key in
 * base64. Refuses a file that group or others can read, as ssh does.
 */
export async function loadStaticKeyPair(path: string): Promise<StaticKeyPair> {
  const info = await stat(path);
  if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
    throw new DevstreamsError(
      'ERR_CONFIG',
      `key file ${path} is readable by others (mode ${(info.mode & 0o777).toString(8)}); chmod 600 it`,
    );
  }
  const text = (await readFile(path, 'utf8')).trim();
  if (text.startsWith('-----BEGIN')) return fromPrivateKeyObject(createPrivateKey(text));
  const raw = Buffer.from(text, 'base64');
  if (raw.length !== 32) throw new DevstreamsError('ERR_CONFIG', `key file ${path} holds neither PEM nor a 32-byte base64 key`);
  return keyPairFromPrivate(raw);
}

/** The key pair of a raw 32-byte X25519 private key. */
export function keyPairFromPrivate(raw: Buffer): StaticKeyPair {
  if (raw.length !== 32) throw new DevstreamsError('ERR_CONFIG', 'an X25519 private key is 32 bytes');
  return fromPrivateKeyObject(createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' }));
}
