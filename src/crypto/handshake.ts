/**
 * Drives one Noise XX handshake over a message pipe: frames each Noise message with a 3-byte
 * header, negotiates the AEAD (the initiator proposes, the responder accepts or refuses), binds
 * the prologue, asks the verifier about the peer's static key as soon as it is proven, and ends
 * with the two directions' traffic secrets.
 *
 * Handshake message on the wire: type u8 (1, 2, 3) ‖ version u8 (1) ‖ cipher u8 (1 AESGCM,
 * 2 ChaChaPoly) ‖ Noise message.
 *
 * The record suite is negotiated in the Noise payloads (extensions, see `encodeExtensions`): the
 * initiator offers its suites in message 1, the responder names its choice in message 2. A peer
 * from before suites sends empty payloads and ignores ours; both ends then seal records with the
 * handshake's cipher (`LEGACY_SUITE`), as that peer does.
 */
import { DevstreamsError } from '../errors.js';
import { LEGACY_SUITE, type CipherName, type RecordSuite } from './aead.js';
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
  /** The AEAD that seals records. */
  suite: RecordSuite;
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

/** Wire id of each record suite (1 and 2 are the handshake cipher ids of the same AEADs). */
export const SUITE_IDS: Record<RecordSuite, number> = { 'aes-256-gcm': 1, 'chacha20-poly1305': 2, 'aes-128-gcm': 3 };
const SUITE_BY_ID = new Map<number, RecordSuite>(Object.entries(SUITE_IDS).map(([s, id]) => [id, s as RecordSuite]));

/** Payload extension types (docs/PROTOCOL.md, "Handshake payload extensions"). */
export const EXT_RECORD_SUITES = 0x01;

/**
 * A handshake payload: a sequence of extensions, each `type u8 ‖ length u8 ‖ value`. Receivers
 * skip types they do not know, so later versions can add some; a payload from before extensions
 * is empty.
 */
export function encodeExtensions(extensions: ReadonlyMap<number, Buffer>): Buffer {
  const out: Buffer[] = [];
  for (const [type, value] of extensions) out.push(Buffer.from([type, value.length]), value);
  return Buffer.concat(out);
}

/** Parses a payload into its extensions; throws on a truncated entry or a repeated type. */
export function decodeExtensions(payload: Buffer): Map<number, Buffer> {
  // Bounded, so a payload of a later version cannot make us hold much.
  if (payload.length > MAX_HANDSHAKE_PAYLOAD) throw fail('handshake payload too large');
  const out = new Map<number, Buffer>();
  for (let at = 0; at < payload.length; ) {
    if (payload.length - at < 2 || payload.length - at - 2 < payload[at + 1]!) throw fail('truncated handshake payload extension');
    const type = payload[at]!;
    if (out.has(type)) throw fail(`handshake payload extension ${type} repeated`);
    out.set(type, payload.subarray(at + 2, at + 2 + payload[at + 1]!));
    at += 2 + payload[at + 1]!;
  }
  return out;
}

const suiteNames = (ids: Iterable<number>): string => [...ids].map((id) => SUITE_BY_ID.get(id) ?? `unknown suite ${id}`).join(', ');

/**
 * Responder: the first suite of the initiator's offer (its preference order) that we allow.
 * No offer: the initiator predates suites and seals with the handshake's cipher.
 */
function chooseSuite(offer: Buffer | undefined, cipher: CipherName, allowed: readonly RecordSuite[]): RecordSuite {
  if (!offer) {
    const legacy = LEGACY_SUITE[cipher];
    if (!allowed.includes(legacy))
      throw fail(`initiator does not negotiate record suites and seals with ${legacy}; we allow ${allowed.join(', ')}`);
    return legacy;
  }
  for (const id of offer) {
    const suite = SUITE_BY_ID.get(id);
    if (suite && allowed.includes(suite)) return suite;
  }
  throw fail(`no record suite in common: initiator offers ${suiteNames(offer) || 'none'}; we allow ${allowed.join(', ')}`);
}

/** Initiator: the suite the responder chose, which must be one we offered. */
function acceptChoice(choice: Buffer | undefined, cipher: CipherName, offered: readonly RecordSuite[]): RecordSuite {
  // No choice: a responder from before suites ignored our offer and seals with the handshake's cipher.
  const suite = choice ? (choice.length === 1 ? SUITE_BY_ID.get(choice[0]!) : undefined) : LEGACY_SUITE[cipher];
  if (!suite || !offered.includes(suite))
    throw fail(
      choice
        ? `responder chose record suite ${suiteNames(choice)}, which we did not offer (${offered.join(', ')})`
        : `responder does not negotiate record suites and seals with ${LEGACY_SUITE[cipher]}, which we do not allow`,
    );
  return suite;
}

const suitePayload = (suites: readonly RecordSuite[]): Buffer =>
  encodeExtensions(new Map([[EXT_RECORD_SUITES, Buffer.from(suites.map((s) => SUITE_IDS[s]))]]));

/** Runs the initiator's side: -> e; <- e, ee, s, es; -> s, se. */
export async function initiatorHandshake(o: ResolvedOptions, io: HandshakeIO): Promise<HandshakeResult> {
  const cipher = o.cipher;
  const noise = new NoiseXX({ initiator: true, cipher, prologue: buildPrologue(o.prologue), staticKeys: o.staticKeys });
  // The offer travels in clear but is hashed into h, so a hub that edits it fails message 2.
  io.send(frame(1, cipher, noise.writeMessage(suitePayload(o.suites))));
  const m2 = unframe(await io.next(), 2);
  if (m2.cipher !== cipher) throw fail(`responder answered with cipher ${m2.cipher}, we proposed ${cipher}`);
  const suite = acceptChoice(decodeExtensions(noise.readMessage(m2.noise)).get(EXT_RECORD_SUITES), cipher, o.suites);
  await o.verifyPeer(noise.remoteStatic!);
  io.send(frame(3, cipher, noise.writeMessage()));
  const [i2r, r2i] = noise.split();
  return {
    cipher,
    suite,
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
  const offer = decodeExtensions(noise.readMessage(m1.noise)).get(EXT_RECORD_SUITES);
  const suite = chooseSuite(offer, cipher, o.suites);
  // Our choice is encrypted and bound to h; an initiator from before suites made no offer and gets none.
  io.send(frame(2, cipher, noise.writeMessage(offer ? suitePayload([suite]) : undefined)));
  const m3 = unframe(await io.next(), 3);
  if (m3.cipher !== cipher) throw fail('cipher changed during the handshake');
  decodeExtensions(noise.readMessage(m3.noise));
  await o.verifyPeer(noise.remoteStatic!);
  const [i2r, r2i] = noise.split();
  return {
    cipher,
    suite,
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
