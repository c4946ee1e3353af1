/**
 * The resumable layer's messages. Each rides in one message of the transport below (a sealed
 * record), first byte the type. Only DATA is numbered and replayed; the rest are per-connection.
 *
 *   DATA    0x01 | payload (one message of the layer above)
 *   ACK     0x02 | u64 messages received (cumulative)
 *   PING    0x03 | u32 opaque          PONG 0x04 | u32 opaque
 *   INIT    0x05 | 16 session id | 32 resume secret           (initiator, first connection)
 *   RESUME  0x06 | 16 session id | 32 proof | u64 received    (initiator, later connections)
 *   RESUMED 0x07 | 32 proof | u64 received                    (responder's answer)
 *   REFUSE  0x08 | utf8 error code                            (then the connection closes)
 *   CLOSE   0x09                                              (orderly end of the session)
 */
import { DevstreamsError } from '../errors.js';

/** Message types of the resumable layer (first byte of each message). */
export const MsgType = { DATA: 1, ACK: 2, PING: 3, PONG: 4, INIT: 5, RESUME: 6, RESUMED: 7, REFUSE: 8, CLOSE: 9 } as const;

/** Bytes of a session id. */
export const SESSION_ID_SIZE = 16;
/** Bytes of a resume secret. */
export const SECRET_SIZE = 32;
/** Bytes of a continuity proof (HMAC-SHA256). */
export const PROOF_SIZE = 32;
/** Bytes the layer adds to each DATA message. */
export const DATA_OVERHEAD = 1;

/** Shared, never written: the DATA type byte every outgoing message starts with. */
export const DATA_HEADER: Buffer = Buffer.from([MsgType.DATA]);

function u64(n: number, into: Buffer, at: number): void {
  into.writeUInt32BE(Math.floor(n / 2 ** 32), at);
  into.writeUInt32BE(n >>> 0, at + 4);
}

function readU64(b: Buffer, at: number): number {
  const n = b.readUInt32BE(at) * 2 ** 32 + b.readUInt32BE(at + 4);
  if (!Number.isSafeInteger(n)) throw new DevstreamsError('ERR_PROTOCOL_FRAME', 'resume counter out of range');
  return n;
}

function need(m: Buffer, size: number, what: string): void {
  if (m.length !== size) throw new DevstreamsError('ERR_PROTOCOL_FRAME', `${what} message of ${m.length} bytes; expected ${size}`);
}

/** An ACK of `received` messages (cumulative). */
export function encodeAck(received: number): Buffer {
  const b = Buffer.allocUnsafe(9);
  b[0] = MsgType.ACK;
  u64(received, b, 1);
  return b;
}

/** Reads an ACK. */
export function decodeAck(m: Buffer): number {
  need(m, 9, 'ACK');
  return readU64(m, 1);
}

/** A PING or PONG with its opaque counter. */
export function encodePing(type: typeof MsgType.PING | typeof MsgType.PONG, opaque: number): Buffer {
  const b = Buffer.allocUnsafe(5);
  b[0] = type;
  b.writeUInt32BE(opaque >>> 0, 1);
  return b;
}

/** The initiator's INIT: session id and resume secret. */
export function encodeInit(sessionId: Buffer, secret: Buffer): Buffer {
  return Buffer.concat([Buffer.from([MsgType.INIT]), sessionId, secret]);
}

/** Reads an INIT. */
export function decodeInit(m: Buffer): { sessionId: Buffer; secret: Buffer } {
  need(m, 1 + SESSION_ID_SIZE + SECRET_SIZE, 'INIT');
  return { sessionId: Buffer.from(m.subarray(1, 1 + SESSION_ID_SIZE)), secret: Buffer.from(m.subarray(1 + SESSION_ID_SIZE)) };
}

/** What a RESUME carries. */
export interface ResumeMessage {
  sessionId: Buffer;
  proof: Buffer;
  received: number;
}

/** A RESUME claiming the session on a new connection. */
export function encodeResume(r: ResumeMessage): Buffer {
  const b = Buffer.allocUnsafe(1 + SESSION_ID_SIZE + PROOF_SIZE + 8);
  b[0] = MsgType.RESUME;
  r.sessionId.copy(b, 1);
  r.proof.copy(b, 1 + SESSION_ID_SIZE);
  u64(r.received, b, 1 + SESSION_ID_SIZE + PROOF_SIZE);
  return b;
}

/** Reads a RESUME. */
export function decodeResume(m: Buffer): ResumeMessage {
  need(m, 1 + SESSION_ID_SIZE + PROOF_SIZE + 8, 'RESUME');
  return {
    sessionId: Buffer.from(m.subarray(1, 1 + SESSION_ID_SIZE)),
    proof: Buffer.from(m.subarray(1 + SESSION_ID_SIZE, 1 + SESSION_ID_SIZE + PROOF_SIZE)),
    received: readU64(m, 1 + SESSION_ID_SIZE + PROOF_SIZE),
  };
}

/** The responder's RESUMED: its proof and its received count. */
export function encodeResumed(proof: Buffer, received: number): Buffer {
  const b = Buffer.allocUnsafe(1 + PROOF_SIZE + 8);
  b[0] = MsgType.RESUMED;
  proof.copy(b, 1);
  u64(received, b, 1 + PROOF_SIZE);
  return b;
}

/** Reads a RESUMED. */
export function decodeResumed(m: Buffer): { proof: Buffer; received: number } {
  need(m, 1 + PROOF_SIZE + 8, 'RESUMED');
  return { proof: Buffer.from(m.subarray(1, 1 + PROOF_SIZE)), received: readU64(m, 1 + PROOF_SIZE) };
}

/** A REFUSE carrying an error code (at most 64 characters). */
export function encodeRefuse(code: string): Buffer {
  return Buffer.concat([Buffer.from([MsgType.REFUSE]), Buffer.from(code.slice(0, 64), 'utf8')]);
}

/** The orderly end of a session: after it, the peer closes instead of waiting to resume. */
export const CLOSE_MESSAGE: Buffer = Buffer.from([MsgType.CLOSE]);
