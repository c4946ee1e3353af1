/**
 * Continuity proofs. The resume secret travels once, inside the first connection's sealed
 * records (the hub never sees it). A proof is an HMAC under that secret over the role, the
 * session id and the NEW connection's handshake hash, so it is only valid on the connection it
 * was made for: a proof replayed onto another connection (another handshake) fails.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { PROOF_SIZE, SECRET_SIZE, SESSION_ID_SIZE } from './wire.js';

/** Which end made a continuity proof; each end proves with its own label. */
export type ProofRole = 'initiator' | 'responder';

/** A fresh session id and resume secret (the initiator makes them). */
export function newSessionKeys(): { sessionId: Buffer; secret: Buffer } {
  return { sessionId: randomBytes(SESSION_ID_SIZE), secret: randomBytes(SECRET_SIZE) };
}

/** HMAC of the session id and this connection's binding under the secret. */
export function makeProof(secret: Buffer, role: ProofRole, sessionId: Buffer, binding: Buffer): Buffer {
  return createHmac('sha256', secret).update(`devstreams resume ${role}\0`).update(sessionId).update(binding).digest();
}

/** Checks a peer's proof in constant time. */
export function checkProof(secret: Buffer, role: ProofRole, sessionId: Buffer, binding: Buffer, proof: Buffer): boolean {
  return proof.length === PROOF_SIZE && timingSafeEqual(makeProof(secret, role, sessionId, binding), proof);
}
