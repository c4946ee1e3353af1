/**
 * Turns an open device stream (a transport through the hub) into a mux session, with the
 * end-to-end record layer between them: the service is the Noise initiator and the mux
 * initiator, the device the responder of both. The stream id is bound into the handshake, so
 * a hub that splices two streams together breaks the handshake rather than the traffic.
 *
 * With resumption on, a resumable layer sits between the record layer and the mux (see
 * src/resume/): the mux session outlives the stream, and later streams, each with its own
 * handshake, continue it.
 *
 * The stream name tells the device what the service will run: `devstreams` (sealed),
 * `devstreams-resumable` (sealed, resumable, a new session), `devstreams-resume.<session id>`
 * (sealed, continues a suspended session) or `devstreams-plain` (no record layer; for
 * measurement only, and refused by devices unless they allow it).
 */
import { secureInitiator, secureResponder, type SecureTransport } from '../crypto/index.js';
import type { CipherName, CryptoMode, PeerVerifier, StaticKeyPair } from '../crypto/index.js';
import { DEFAULT_MUX_CONFIG, Session, type MuxConfig, type SessionOptions, type SessionRole } from '../mux/index.js';
import { ResumableTransport, type Link, type ResumeConfig, type ResumeRegistry } from '../resume/index.js';
import type { Transport } from '../transport/transport.js';
import { DevstreamsError } from '../errors.js';

/** Stream name of an end-to-end encrypted device stream. */
export const STREAM_NAME_SEALED = 'devstreams';
/** Stream name of a plaintext device stream (no record layer). */
export const STREAM_NAME_PLAIN = 'devstreams-plain';
/** Stream name of a new resumable, encrypted device session. */
export const STREAM_NAME_RESUMABLE = 'devstreams-resumable';
/** Prefix of the stream name that continues a suspended session; the hex session id follows. */
export const STREAM_NAME_RESUME_PREFIX = 'devstreams-resume.';

/** The stream name that resumes session `sessionId` (hex). */
export function resumeStreamName(sessionId: string): string {
  return `${STREAM_NAME_RESUME_PREFIX}${sessionId}`;
}

/** The session id a resume stream name carries, or undefined for any other name. */
export function parseResumeStreamName(name: string): string | undefined {
  if (!name.startsWith(STREAM_NAME_RESUME_PREFIX)) return undefined;
  const id = name.slice(STREAM_NAME_RESUME_PREFIX.length);
  return /^[0-9a-f]{32}$/.test(id) ? id : undefined;
}

/** How a device session is built: encryption, keys, mux limits, resumption. */
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
  /**
   * Resumption (encrypted sessions only): true or limits. Service: asks for a resumable session
   * and reconnects when its stream drops. Device: the limits it holds sessions with. Default off
   * in the SDK (the proxies turn it on).
   */
  resume?: boolean | Partial<ResumeConfig>;
}

/** An open device stream carrying a mux session. */
export interface DeviceSession {
  deviceId: string;
  streamId: string;
  session: Session;
  /** The record layer when encrypted: peer key, cipher, counters (of the first stream). */
  secure?: SecureTransport;
  /** The resumable layer when resumption is on: session id, resume count, events. */
  resumable?: ResumableTransport;
  /** Device side: true when this stream continued a session already held (no new mux session). */
  resumed?: boolean;
}

/** The prologue both ends bind into the handshake. */
export function streamPrologue(streamId: string): string {
  return `devstreams/1 stream ${streamId}`;
}

/** The resume limits `o.resume` asks for, or undefined when resumption is off. */
export function resumeConfigOf(o: EndToEndOptions): Partial<ResumeConfig> | undefined {
  if (!o.resume || o.encrypt === false) return undefined;
  return o.resume === true ? {} : o.resume;
}

/** Runs the record layer's handshake over `transport` and returns it as a link for resumption. */
export async function secureLink(
  transport: Transport,
  role: SessionRole,
  streamId: string,
  o: EndToEndOptions,
): Promise<{ secure: SecureTransport; link: Link }> {
  if (!o.staticKeys || !o.verifyPeer) {
    transport.close();
    throw new DevstreamsError('ERR_CONFIG', 'an encrypted device session needs staticKeys and verifyPeer');
  }
  const secureOptions = {
    staticKeys: o.staticKeys,
    verifyPeer: o.verifyPeer,
    prologue: streamPrologue(streamId),
    crypto: o.crypto,
    cipher: o.cipher,
  };
  const secure = role === 'initiator' ? await secureInitiator(transport, secureOptions) : await secureResponder(transport, secureOptions);
  return { secure, link: { transport: secure, binding: secure.session.handshakeHash } };
}

/** Wraps `transport` in the record layer (unless disabled), the resumable layer (if asked) and a mux session of `role`. */
export async function startDeviceSession(
  transport: Transport,
  role: SessionRole,
  deviceId: string,
  streamId: string,
  o: EndToEndOptions,
): Promise<DeviceSession> {
  if (o.encrypt === false) {
    return { deviceId, streamId, session: new Session(transport, { ...o.mux, role }) };
  }
  const { secure, link } = await secureLink(transport, role, streamId, o);
  const resumeConfig = resumeConfigOf(o);
  if (!resumeConfig) return { deviceId, streamId, secure, session: new Session(secure, { ...o.mux, role }) };
  const resumable = role === 'initiator' ? ResumableTransport.initiate(link, resumeConfig) : ResumableTransport.accept(link, resumeConfig);
  const c = resumable.config;
  // The mux keepalive must not end a session that is only suspended: its timeout outlasts the
  // give-up time (liveness of each connection is the resumable layer's job).
  const keepaliveTimeoutMs = Math.max(
    o.mux?.keepaliveTimeoutMs ?? DEFAULT_MUX_CONFIG.keepaliveTimeoutMs,
    c.giveUpMs + c.livenessTimeoutMs + c.resumeTimeoutMs,
  );
  const session = new Session(resumable, { ...o.mux, keepaliveTimeoutMs, role });
  // A session given up ends its channels with ERR_SESSION_LOST (not a generic transport close).
  resumable.events.on('lost', (err) => session.close(err));
  session.on('rtt', (minRttMs) => resumable.setPathRtt(minRttMs));
  resumable.events.on('resumed', () => session.resetRtt());
  return { deviceId, streamId, secure, resumable, session };
}

/** What a stream name asks the device to run; an unknown name is a sealed session. */
export type DeviceStreamKind = 'plain' | 'sealed' | 'resumable' | 'resume';

/** The kind of session `streamName` asks for. */
export function deviceStreamKind(streamName: string): DeviceStreamKind {
  if (streamName === STREAM_NAME_PLAIN) return 'plain';
  if (streamName === STREAM_NAME_RESUMABLE) return 'resumable';
  if (parseResumeStreamName(streamName) !== undefined) return 'resume';
  return 'sealed';
}

/** A resumable device session the device holds, so that a later stream can continue it. */
export type HeldDeviceSession = DeviceSession & { resumable: ResumableTransport };

/** What the device's side of one stream request offers `acceptDeviceSession`. */
export interface DeviceStreamSide {
  readonly deviceId: string;
  readonly streamId: string;
  readonly streamName: string;
  /** The resumable sessions this device holds, by session id. */
  readonly held: ResumeRegistry<HeldDeviceSession>;
  /** Answers yes to the hub and opens the stream; `zeroMask` when every message will be sealed. */
  accept(zeroMask: boolean): Promise<Transport>;
  /** Answers no to the hub; the service sees ERR_STREAM_REJECTED with `reason`. */
  reject(reason: string): void;
}

/**
 * The device's answer to a stream request as a mux session: plaintext (only when allowed),
 * sealed, a new resumable session (held for later resumes), or the continuation of one held.
 */
export async function acceptDeviceSession(
  side: DeviceStreamSide,
  o: EndToEndOptions & { allowPlaintext?: boolean },
): Promise<DeviceSession> {
  const kind = deviceStreamKind(side.streamName);
  if (kind === 'plain' && !o.allowPlaintext) {
    side.reject('this device requires end-to-end encryption');
    throw new DevstreamsError('ERR_STREAM_REJECTED', 'refused a plaintext stream: this device requires end-to-end encryption');
  }
  if (kind === 'resume') return resumeDeviceSession(side, parseResumeStreamName(side.streamName)!, o);
  const transport = await side.accept(kind !== 'plain');
  if (kind === 'resumable') {
    // The device holds resumable sessions with its own limits (default ones unless given).
    const ds = await startDeviceSession(transport, 'responder', side.deviceId, side.streamId, {
      ...o,
      encrypt: true,
      resume: o.resume || true,
    });
    side.held.add(ds as HeldDeviceSession);
    return ds;
  }
  // Plain or sealed: the service did not ask for resumption, so the device's own resume limits
  // (o.resume) must not put a resumable layer on its end only.
  return startDeviceSession(transport, 'responder', side.deviceId, side.streamId, { ...o, encrypt: kind !== 'plain', resume: false });
}

/**
 * Continues a session this device holds over the new stream: rejected before any byte flows
 * when the session is unknown (never held, or given up); then a fresh handshake (the peer must
 * have the same key as at the start) and the resume proof, checked by the resumable layer.
 */
async function resumeDeviceSession(side: DeviceStreamSide, sessionId: string, o: EndToEndOptions): Promise<DeviceSession> {
  const held = side.held.get(sessionId);
  if (!held) {
    side.reject('unknown session');
    throw new DevstreamsError('ERR_RESUME_REFUSED', `no session ${sessionId} to resume`);
  }
  const transport = await side.accept(true);
  const { secure, link } = await secureLink(transport, 'responder', side.streamId, o);
  const firstKey = held.secure?.session.remoteStatic;
  if (firstKey && !firstKey.equals(secure.session.remoteStatic)) {
    secure.close();
    throw new DevstreamsError('ERR_RESUME_REFUSED', 'a different service key tried to resume the session');
  }
  await held.resumable.acceptResume(link);
  return { ...held, streamId: side.streamId, resumed: true };
}
