/**
 * The resume handshake on a new connection, one function per step and role: the initiator's
 * RESUME, the responder's check of it and its RESUMED answer, the initiator's check of that.
 * Each proof is an HMAC over the new connection's handshake hash (proof.ts), so a recorded
 * handshake is worth nothing on another connection. A check that fails throws
 * ERR_RESUME_REFUSED; the transport decides what a refusal does to the session.
 */
import { DevstreamsError } from '../errors.js';
import { checkProof, makeProof } from './proof.js';
import { MsgType, decodeResume, decodeResumed, encodeResume, encodeResumed } from './wire.js';

/** What both ends of a session hold after INIT. */
export interface SessionKeys {
  sessionId: Buffer;
  secret: Buffer;
}

function refused(message: string): DevstreamsError {
  return new DevstreamsError('ERR_RESUME_REFUSED', message);
}

/** Initiator: the RESUME that claims the session on the connection with this `binding`. */
export function resumeRequest(keys: SessionKeys, binding: Buffer, received: number): Buffer {
  return encodeResume({ sessionId: keys.sessionId, proof: makeProof(keys.secret, 'initiator', keys.sessionId, binding), received });
}

/** Responder: checks the first message of a resume connection; returns the messages the peer received. */
export function checkResumeRequest(m: Buffer, keys: SessionKeys | undefined, binding: Buffer): number {
  if (m[0] !== MsgType.RESUME) throw refused('first message on a resume connection must be RESUME');
  const r = decodeResume(m);
  if (!keys || !r.sessionId.equals(keys.sessionId)) throw refused('unknown session');
  if (!checkProof(keys.secret, 'initiator', keys.sessionId, binding, r.proof))
    throw refused('resume proof does not match this connection (replayed or forged)');
  return r.received;
}

/** Responder: the RESUMED that proves it holds the session too. */
export function resumeAnswer(keys: SessionKeys, binding: Buffer, received: number): Buffer {
  return encodeResumed(makeProof(keys.secret, 'responder', keys.sessionId, binding), received);
}

/** Initiator: checks the responder's answer; returns the messages the peer received. */
export function checkResumeAnswer(m: Buffer, keys: SessionKeys, binding: Buffer): number {
  if (m[0] === MsgType.REFUSE) throw refused(`peer refused the resume: ${m.subarray(1).toString('utf8')}`);
  if (m[0] !== MsgType.RESUMED) throw refused(`expected RESUMED, got type ${m[0]}`);
  const r = decodeResumed(m);
  if (!checkProof(keys.secret, 'responder', keys.sessionId, binding, r.proof)) throw refused('peer could not prove it holds the session');
  return r.received;
}

/** Both: the peer's count must lie within what we still hold, or resending cannot close the gap. */
export function checkPeerCount(n: number, acknowledged: number, sent: number): void {
  if (n < acknowledged || n > sent) throw refused(`peer received ${n} messages; we hold ${acknowledged}..${sent}`);
}
