/**
 * Drives one Noise XX handshake over a message pipe: frames each Noise message with a 3-byte
 * header, negotiates the AEAD (the initiator proposes, the responder accepts or refuses), binds
 * the prologue, asks the verifier about the peer's static key as soon as it is proven, and ends
 * with the two directions' traffic secrets.
 *
 * Handshake message on the wire: type u8 (1, 2, 3) ‖ version u8 (1) ‖ cipher u8 (1 AESGCM,
 * 2 ChaChaPoly) ‖ Noise message.
 */
import { DevstreamsError } from '../errors.js';
import type { CipherName } from './aead.js';
import { MAX_HANDSHAKE_MESSAGE, MAX_HANDSHAKE_PAYLOAD, PROTOCOL_VERSION } from './constants.js';
import { NoiseXX, noiseProtocolName } from './noise.js';
import type { ResolvedOptions } from './options.js';

const CIPHER_IDS: Record<CipherName, number> = { AESGCM: 1, ChaChaPoly: 2 };
const HEADER = 3;
const PROLOGUE_LABEL = 'devstreams-record';

/** Message I/O the handshake runs over. `next` rejects when the pipe closes or times out. */
export interface HandshakeIO {
  send(message: Buffer): void;
  next(): Promise<Buffer>;
}

/** What a finished handshake leaves: keys, peer identity and the handshake hash. */
export interface HandshakeResult {
  cipher: CipherName;
  protocolName: string;
  sendSecret: Buffer;
  recvSecret: Buffer;
  remoteStatic: Buffer;
  handshakeHash: Buffer;
}

/** Prologue = "devstreams-record" ‖ 0x00 ‖ version u8 ‖ length u32 ‖ caller's prologue. */
export function buildPrologue(user: Buffer): Buffer {
  const fixed = Buffer.alloc(PROLOGUE_LABEL.length + 6);
  fixed.write(PROLOGUE_LABEL, 0, 'ascii');
  fixed[PROLOGUE_LABEL.length] = 0;
  fixed[PROLOGUE_LABEL.length + 1] = PROTOCOL_VERSION;
  fixed.writeUInt32BE(user.length, PROLOGUE_LABEL.length + 2);
  return Buffer.concat([fixed, user]);
}

function fail(message: string): DevstreamsError {
  return new DevstreamsError('ERR_HANDSHAKE_FAILED', message);
}

function frame(type: number, cipher: CipherName, noise: Buffer): Buffer {
  return Buffer.concat([Buffer.from([type, PROTOCOL_VERSION, CIPHER_IDS[cipher]]), noise]);
}

/** Checks the 3-byte header; returns the cipher it names and the Noise bytes. */
function unframe(message: Buffer, type: number): { cipher: CipherName; noise: Buffer } {
  if (message.length < HEADER || message.length > MAX_HANDSHAKE_MESSAGE + HEADER)
    throw fail(`handshake message ${type} has a bad length (${message.length})`);
  if (message[0] !== type) throw fail(`expected handshake message ${type}, got type 0x${message[0]!.toString(16)}`);
  if (message[1] !== PROTOCOL_VERSION) throw fail(`peer speaks record protocol version ${message[1]}, we speak ${PROTOCOL_VERSION}`);
  const cipher = message[2] === 1 ? 'AESGCM' : message[2] === 2 ? 'ChaChaPoly' : undefined;
  if (!cipher) throw fail(`unknown cipher id ${message[2]}`);
  return { cipher, noise: message.subarray(HEADER) };
}

function checkPayload(payload: Buffer): void {
  // v1 sends empty payloads; later versions may add fields, so tolerate but bound them.
  if (payload.length > MAX_HANDSHAKE_PAYLOAD) throw fail('handshake payload too large');
}

/** Runs the initiator's side: -> e; <- e, ee, s, es; -> s, se. */
export async function initiatorHandshake(o: ResolvedOptions, io: HandshakeIO): Promise<HandshakeResult> {
  const cipher = o.cipher;
  const noise = new NoiseXX({ initiator: true, cipher, prologue: buildPrologue(o.prologue), staticKeys: o.staticKeys });
  io.send(frame(1, cipher, noise.writeMessage()));
  const m2 = unframe(await io.next(), 2);
  if (m2.cipher !== cipher) throw fail(`responder answered with cipher ${m2.cipher}, we proposed ${cipher}`);
  checkPayload(noise.readMessage(m2.noise));
  await o.verifyPeer(noise.remoteStatic!);
  io.send(frame(3, cipher, noise.writeMessage()));
  const [i2r, r2i] = noise.split();
  return {
    cipher,
    protocolName: noiseProtocolName(cipher),
    sendSecret: i2r,
    recvSecret: r2i,
    remoteStatic: noise.remoteStatic!,
    handshakeHash: noise.handshakeHash,
  };
}

/** Runs the responder's side. */
export async function responderHandshake(o: ResolvedOptions, io: HandshakeIO): Promise<HandshakeResult> {
  const m1 = unframe(await io.next(), 1);
  const cipher = m1.cipher;
  if (!o.acceptCiphers.includes(cipher)) throw fail(`initiator proposed cipher ${cipher}, we accept ${o.acceptCiphers.join(', ')}`);
  const noise = new NoiseXX({ initiator: false, cipher, prologue: buildPrologue(o.prologue), staticKeys: o.staticKeys });
  checkPayload(noise.readMessage(m1.noise));
  io.send(frame(2, cipher, noise.writeMessage()));
  const m3 = unframe(await io.next(), 3);
  if (m3.cipher !== cipher) throw fail('cipher changed during the handshake');
  checkPayload(noise.readMessage(m3.noise));
  await o.verifyPeer(noise.remoteStatic!);
  const [i2r, r2i] = noise.split();
  return {
    cipher,
    protocolName: noiseProtocolName(cipher),
    sendSecret: r2i,
    recvSecret: i2r,
    remoteStatic: noise.remoteStatic!,
    handshakeHash: noise.handshakeHash,
  };
}

/** Type byte of an alert: `0x15 ‖ version u8 ‖ ASCII error code` (at most 64 code bytes). */
export const ALERT_TYPE = 0x15;

/**
 * An alert tells the peer why we are ending the handshake (e.g. ERR_HANDSHAKE_PEER_KEY_CHANGED)
 * so its error says more than "transport closed". It is not authenticated: the hub could forge
 * one, which gains it nothing beyond closing the stream, which it can do anyway.
 */
export function encodeAlert(code: string): Buffer {
  return Buffer.concat([Buffer.from([ALERT_TYPE, PROTOCOL_VERSION]), Buffer.from(code.slice(0, 64).replace(/[^A-Z0-9_]/g, '?'), 'ascii')]);
}

/** The error a received alert turns into. */
export function alertError(message: Buffer): DevstreamsError {
  const code = message
    .subarray(2, 66)
    .toString('ascii')
    .replace(/[^A-Z0-9_]/g, '?');
  // The refusal an operator meets first: a device that does not authorize this service's key.
  const hint =
    code === 'ERR_HANDSHAKE_PEER_UNKNOWN'
      ? " (the peer does not accept our key; a device lets in only the service keys it authorizes: 'devstreams key show' on the service, 'devstreams key authorize KEY' on the device)"
      : '';
  return new DevstreamsError('ERR_HANDSHAKE_FAILED', `peer ended the handshake: ${code || 'no reason given'}${hint}`);
}
