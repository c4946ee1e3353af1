/**
 * Turns an open device stream (a transport through the hub) into a mux session, with the
 * end-to-end record layer between them: the service is the Noise initiator and the mux
 * initiator, the device the responder of both. The stream id is bound into the handshake, so
 * a hub that splices two streams together breaks the handshake rather than the traffic.
 *
 * The stream name tells the device whether the service will run the handshake: `devstreams`
 * (sealed) or `devstreams-plain` (no record layer; for measurement only, and refused by devices
 * unless they allow it).
 */
import { secureInitiator, secureResponder, type SecureTransport } from '../crypto/index.js';
import type { CipherName, CryptoMode, PeerVerifier, StaticKeyPair } from '../crypto/index.js';
import { Session, type MuxConfig, type SessionOptions, type SessionRole } from '../mux/index.js';
import type { Transport } from '../transport/transport.js';
import { DevstreamsError } from '../errors.js';

/** Stream name of an end-to-end encrypted device stream. */
export const STREAM_NAME_SEALED = 'devstreams';
/** Stream name of a plaintext device stream (no record layer). */
export const STREAM_NAME_PLAIN = 'devstreams-plain';

export interface EndToEndOptions {
  /** False runs the mux straight over the hub's transport: the hub can read it. Default true. */
  encrypt?: boolean;
  /** This side's static key pair (device: its enrollment key; service: its own key). */
  staticKeys?: StaticKeyPair;
  /** Accepts or refuses the peer's static key (service: the device's pinned key). */
  verifyPeer?: PeerVerifier;
  /** Where records are sealed. Default the record layer's default. */
  crypto?: CryptoMode;
  cipher?: CipherName;
  /** Mux limits for the session, and (device side) the handler for channels the peer opens. */
  mux?: Partial<MuxConfig> & Pick<SessionOptions, 'onOpen'>;
}

/** An open device stream carrying a mux session. */
export interface DeviceSession {
  deviceId: string;
  streamId: string;
  session: Session;
  /** The record layer when encrypted: peer key, cipher, counters. */
  secure?: SecureTransport;
}

/** The prologue both ends bind into the handshake. */
export function streamPrologue(streamId: string): string {
  return `devstreams/1 stream ${streamId}`;
}

/** Wraps `transport` in the record layer (unless disabled) and a mux session of `role`. */
export async function startDeviceSession(transport: Transport, role: SessionRole, deviceId: string, streamId: string, o: EndToEndOptions): Promise<DeviceSession> {
  if (o.encrypt === false) {
    return { deviceId, streamId, session: new Session(transport, { ...o.mux, role }) };
  }
  if (!o.staticKeys || !o.verifyPeer) {
    transport.close();
    throw new DevstreamsError('ERR_CONFIG', 'an encrypted device session needs staticKeys and verifyPeer');
  }
  const secureOptions = {
    staticKeys: o.staticKeys,
    verifyPeer: o.verifyPeer,
    prologue: streamPrologue(streamId),
    ...(o.crypto !== undefined ? { crypto: o.crypto } : {}),
    ...(o.cipher !== undefined ? { cipher: o.cipher } : {}),
  };
  const secure = role === 'initiator' ? await secureInitiator(transport, secureOptions) : await secureResponder(transport, secureOptions);
  return { deviceId, streamId, secure, session: new Session(secure, { ...o.mux, role }) };
}
