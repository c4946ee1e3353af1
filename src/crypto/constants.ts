/**
 * Every named limit and default of the record layer and its handshake, in one place. Options
 * objects elsewhere default to these; docs/PROTOCOL.md ("Record layer and handshake") lists the same values.
 */

import type { RecordSuite } from './aead.js';

/**
 * Largest plaintext one record carries (one `send` of the layer above = one record): 64 KiB + 1 KiB
 * (66,560), so one mux batch (a full 64 KiB DATA frame, its 10-byte header and a few control
 * frames; the mux's maxBatchBytes default is 64 KiB + 512) fits in one record. Sealed, that is
 * 66,588 bytes, inside the transports' DEFAULT_MAX_MESSAGE_SIZE (64 KiB + 2 KiB).
 */
export const MAX_RECORD_PLAINTEXT = 64 * 1024 + 1024;

/** Record header: type u8, reserved u8, key epoch u16, sequence u64 (big-endian). */
export const RECORD_HEADER_SIZE = 12;

/**
 * Record suites offered and allowed by default, in preference order. AES-128-GCM first: TLS 1.3's
 * mandatory suite and OpenSSH's first AES-GCM choice; see docs/PROTOCOL.md ("Record suites")
 * for the measurement behind the order.
 */
export const DEFAULT_RECORD_SUITES: readonly RecordSuite[] = ['aes-128-gcm', 'aes-256-gcm', 'chacha20-poly1305'];

/** AEAD tag length of every record suite (AES-GCM and ChaCha20-Poly1305). */
export const TAG_SIZE = 16;

/** Bytes a sealed record adds to its plaintext. */
export const RECORD_OVERHEAD = RECORD_HEADER_SIZE + TAG_SIZE;

/** Records sent under one key before the sender moves to the next key epoch. */
export const DEFAULT_REKEY_RECORDS = 2 ** 20;

/** Plaintext bytes sent under one key before the sender moves to the next key epoch (1 GiB). */
export const DEFAULT_REKEY_BYTES = 2 ** 30;

/** Time allowed for the whole handshake (all three messages) before `ERR_HANDSHAKE_TIMEOUT`. */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** Largest handshake message accepted (Noise caps messages at 65,535 bytes). */
export const MAX_HANDSHAKE_MESSAGE = 65_535;

/** Largest handshake payload this implementation sends or accepts (it carries a tiny CBOR-free struct). */
export const MAX_HANDSHAKE_PAYLOAD = 1024;

/** Worker offload: plaintext bytes gathered into one task before it is dispatched (several records). */
export const DEFAULT_WORKER_BATCH_BYTES = 512 * 1024;

/** Worker offload: bytes waiting for or inside workers (sending side) above which `send` returns false. */
export const DEFAULT_SEAL_HIGH_WATER = 1024 * 1024;

/** Worker offload: default pool size. */
export const DEFAULT_WORKER_THREADS = 1;

/** `auto` mode: wall-clock budget for the start-up calibration. */
export const AUTO_CALIBRATION_BUDGET_MS = 150;

/** Wire version carried in every handshake message and bound into the prologue. */
export const PROTOCOL_VERSION = 1;

/** Sequence numbers are u64 on the wire; this implementation stops (closes) before 2^53. */
export const MAX_SEQUENCE = Number.MAX_SAFE_INTEGER;

/** Bytes of records the responder holds while it verifies the initiator's key after message 3. */
export const MAX_EARLY_BYTES = 16 * 1024 * 1024;

/**
 * Workers: received bytes waiting to be opened. The peer decides how fast records arrive; a
 * well-behaved one sends only what the mux windows allow (64 MiB of session window by default),
 * so one past this sends beyond any window and ends the session with ERR_PROTOCOL_FLOOD.
 */
export const DEFAULT_MAX_OPEN_BACKLOG = 96 * 1024 * 1024;
