/**
 * Options of a secure session, their defaults, and the check that rejects bad values before
 * anything is sent.
 */
import { DevstreamsError } from '../errors.js';
import { RECORD_SUITES, type CipherName, type RecordSuite } from './aead.js';
import type { StaticKeyPair } from './keys.js';
import type { PeerVerifier } from './trust.js';
import {
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_RECORD_SUITES,
  DEFAULT_REKEY_BYTES,
  DEFAULT_REKEY_RECORDS,
  DEFAULT_SEAL_HIGH_WATER,
  DEFAULT_MAX_OPEN_BACKLOG,
  DEFAULT_WORKER_BATCH_BYTES,
  DEFAULT_WORKER_THREADS,
  MAX_RECORD_PLAINTEXT,
} from './constants.js';

/** Where records are sealed and opened. */
export type CryptoMode = 'inline' | 'workers' | 'auto';

/**
 * Default mode, chosen from `bench/crypto-bench.ts` on the 2-core target: inline sealing
 * delivered more throughput and fewer CPU seconds per GiB than either worker configuration
 * (see docs/PROTOCOL.md, "Record layer and handshake", "Offload").
 */
export const DEFAULT_CRYPTO_MODE: CryptoMode = 'inline';

/** Options of a secure session; every field but the keys and the verifier has a default. */
export interface SecureTransportOptions {
  /** This side's static key pair (the device's enrollment key, or the service's key). */
  staticKeys: StaticKeyPair;
  /** Accepts or refuses the peer's proven static key (see trust.ts). Required: no silent trust. */
  verifyPeer: PeerVerifier;
  /** Bytes both ends bind into the handshake, e.g. `streamId`; a hub splicing streams breaks it. */
  prologue?: Buffer | string;
  /** Initiator: the AEAD to propose. Default AESGCM. */
  cipher?: CipherName;
  /** Responder: AEADs it accepts from the initiator. Default both. */
  acceptCiphers?: readonly CipherName[];
  /**
   * Record suites this side allows, in preference order: the initiator offers them in this order
   * and the responder takes the first it also allows. Default DEFAULT_RECORD_SUITES.
   */
  suites?: readonly RecordSuite[];
  /** Default DEFAULT_HANDSHAKE_TIMEOUT_MS (10 s). */
  handshakeTimeoutMs?: number;
  /** Records per key epoch before the sender rekeys. Default 2^20. */
  rekeyRecords?: number;
  /** Plaintext bytes per key epoch before the sender rekeys. Default 1 GiB. */
  rekeyBytes?: number;
  /** Largest plaintext per record (= per send). Default MAX_RECORD_PLAINTEXT (66,560), never above the inner transport's limit minus 28. */
  maxRecordPlaintext?: number;
  /** Default DEFAULT_CRYPTO_MODE. */
  crypto?: CryptoMode;
  /** Worker threads when offloading. Default 1. */
  workerThreads?: number;
  /** Plaintext bytes gathered per worker task. Default 512 KiB. */
  workerBatchBytes?: number;
  /** Workers: bytes waiting to be sealed above which `send` returns false. Default 1 MiB. */
  sealHighWater?: number;
  /** Workers: received bytes waiting to be opened above which the session ends (ERR_PROTOCOL_FLOOD). Default 96 MiB; keep it above the mux session window. */
  maxOpenBacklog?: number;
}

/** SecureTransportOptions with every default filled in and checked. */
export type ResolvedOptions = Required<Omit<SecureTransportOptions, 'prologue'>> & { prologue: Buffer };

const positiveInt = (name: string, v: number): number => {
  if (!Number.isSafeInteger(v) || v <= 0) throw new DevstreamsError('ERR_CONFIG', `${name} must be a positive integer, got ${v}`);
  return v;
};

/** Fills in defaults and validates; throws ERR_CONFIG. */
export function resolveOptions(o: SecureTransportOptions): ResolvedOptions {
  if (o.staticKeys?.publicKey.length !== 32 || o.staticKeys.privateKey.length !== 32) {
    throw new DevstreamsError('ERR_CONFIG', 'staticKeys must be an X25519 key pair (32-byte public and private keys)');
  }
  if (typeof o.verifyPeer !== 'function')
    throw new DevstreamsError('ERR_CONFIG', 'verifyPeer is required (use expectKey, allowKeys or KnownDevices.verifier)');
  const cipher = o.cipher ?? 'AESGCM';
  const acceptCiphers = o.acceptCiphers ?? ['AESGCM', 'ChaChaPoly'];
  for (const c of [cipher, ...acceptCiphers]) {
    if (c !== 'AESGCM' && c !== 'ChaChaPoly') throw new DevstreamsError('ERR_CONFIG', `unknown cipher ${String(c)}`);
  }
  const suites = o.suites ?? DEFAULT_RECORD_SUITES;
  if (suites.length === 0) throw new DevstreamsError('ERR_CONFIG', 'suites must name at least one record suite');
  for (const s of suites) {
    if (!RECORD_SUITES.includes(s))
      throw new DevstreamsError('ERR_CONFIG', `unknown record suite ${String(s)} (known: ${RECORD_SUITES.join(', ')})`);
  }
  const crypto = o.crypto ?? DEFAULT_CRYPTO_MODE;
  if (!['inline', 'workers', 'auto'].includes(crypto))
    throw new DevstreamsError('ERR_CONFIG', `crypto must be inline, workers or auto, got ${String(crypto)}`);
  return {
    staticKeys: o.staticKeys,
    verifyPeer: o.verifyPeer,
    prologue: typeof o.prologue === 'string' ? Buffer.from(o.prologue, 'utf8') : (o.prologue ?? Buffer.alloc(0)),
    cipher,
    acceptCiphers,
    suites,
    handshakeTimeoutMs: positiveInt('handshakeTimeoutMs', o.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS),
    rekeyRecords: positiveInt('rekeyRecords', o.rekeyRecords ?? DEFAULT_REKEY_RECORDS),
    rekeyBytes: positiveInt('rekeyBytes', o.rekeyBytes ?? DEFAULT_REKEY_BYTES),
    maxRecordPlaintext: positiveInt('maxRecordPlaintext', o.maxRecordPlaintext ?? MAX_RECORD_PLAINTEXT),
    crypto,
    workerThreads: positiveInt('workerThreads', o.workerThreads ?? DEFAULT_WORKER_THREADS),
    workerBatchBytes: positiveInt('workerBatchBytes', o.workerBatchBytes ?? DEFAULT_WORKER_BATCH_BYTES),
    sealHighWater: positiveInt('sealHighWater', o.sealHighWater ?? DEFAULT_SEAL_HIGH_WATER),
    maxOpenBacklog: positiveInt('maxOpenBacklog', o.maxOpenBacklog ?? DEFAULT_MAX_OPEN_BACKLOG),
  };
}
