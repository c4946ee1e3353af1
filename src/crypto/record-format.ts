/**
 * Byte layout of a sealed record's 12-byte header (authenticated as AAD):
 *   0  u8   type      0x17 (application record)
 *   1  u8   reserved  0
 *   2  u16  epoch     key epoch, mod 2^16, +1 at each rekey (big-endian)
 *   4  u64  seq       record sequence number, from 0, never reset by rekey (big-endian)
 * The ciphertext and its 16-byte tag follow. Handshake messages use other type bytes (0x01-0x03).
 */
import { RECORD_HEADER_SIZE } from './constants.js';

/** Type byte of an application record. */
export const RECORD_TYPE = 0x17;

/** The clear header of a sealed record: key epoch and sequence number. */
export interface RecordHeader {
  epoch: number;
  seq: number;
}

/** Encodes a header into a fresh 12-byte buffer. */
export function encodeRecordHeader(epoch: number, seq: number): Buffer {
  const h = Buffer.allocUnsafe(RECORD_HEADER_SIZE);
  h[0] = RECORD_TYPE;
  h[1] = 0;
  h.writeUInt16BE(epoch & 0xffff, 2);
  h.writeUInt32BE(Math.floor(seq / 0x1_0000_0000), 4);
  h.writeUInt32BE(seq >>> 0, 8);
  return h;
}

/**
 * Decodes the header of `message`, or returns null when the message is too short, has another
 * type, a non-zero reserved byte, or a sequence beyond 2^53 (which this implementation never sends).
 */
export function decodeRecordHeader(message: Buffer): RecordHeader | null {
  if (message.length < RECORD_HEADER_SIZE || message[0] !== RECORD_TYPE || message[1] !== 0) return null;
  const hi = message.readUInt32BE(4);
  if (hi > 0x1f_ffff) return null;
  return { epoch: message.readUInt16BE(2), seq: hi * 0x1_0000_0000 + message.readUInt32BE(8) };
}
