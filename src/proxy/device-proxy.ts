/**
 * The device local proxy as a whole: keeps the control socket to the hub up, accepts each stream
 * the service asks for as an end-to-end encrypted mux session, and serves its channels against
 * the allow list. Embeddable; `devstreams device-proxy` is a thin shell around it.
 */
import { EventEmitter } from 'node:events';
import type { AuthorizedServices, CryptoMode, PeerVerifier, StaticKeyPair } from '../crypto/index.js';
import { acceptAnyKey, allowKeys } from '../crypto/index.js';
import type { Session } from '../mux/index.js';
import { DeviceClient, parseResumeStreamName, type DeviceClientOptions } from '../sdk/index.js';
import { DevstreamsError } from '../errors.js';
import type { ResumeConfig } from '../resume/index.js';
import type { AllowList } from './allow-list.js';
import { deviceChannelHandler, type DeviceHandlerOptions } from './device-handler.js';

/** The device proxy's client options plus what it lets through: targets, service keys and session limits. */
export interface DeviceProxyOptions extends DeviceClientOptions {
  connectionString: string;
  allow: AllowList;
  /** The device's static key pair (its identity in the end-to-end handshake). */
  staticKeys: StaticKeyPair;
  /**
   * Service keys allowed to open sessions, besides those in `authorizedServices`. With neither
   * (and no `acceptAnyService`) every session is refused.
   */
  serviceKeys?: Buffer[];
  /** The device's authorized-services file, read on every handshake. */
  authorizedServices?: AuthorizedServices;
  /**
   * Accept any service key. Then whoever holds a service credential of the hub, the hub itself,
   * or anyone who can write the fleet's Redis can reach every allowed target. Default false.
   */
  acceptAnyService?: boolean;
  /**
   * Established (authenticated) sessions open at once; a stream request past it is rejected
   * before any byte flows. Each session has a 64 MiB receive window. Default
   * DEFAULT_MAX_DEVICE_SESSIONS (16).
   */
  maxSessions?: number;
  /**
   * Streams still in their handshake (the service's key not yet checked) at once, counted apart
   * from `maxSessions` like sshd's MaxStartups: when full, the oldest starting stream is dropped
   * for the newcomer, so a holder of some service credential who opens streams and never
   * handshakes cannot keep an authorized service out. Each may hold up to 16 MiB of records
   * before its handshake ends. Default DEFAULT_MAX_DEVICE_STARTING (10).
   */
  maxStarting?: number;
  /** Accept streams a service opens without the record layer. Default false. */
  allowPlaintext?: boolean;
  crypto?: CryptoMode;
  connectTimeoutMs?: number;
  /** Limits the device holds resumable sessions with (give-up time...). Services choose resumption. */
  resume?: Partial<ResumeConfig>;
}

/** Events a DeviceProxy emits, with their arguments: the control socket, sessions, resumption and channels. */
export interface DeviceProxyEvents {
  connected: [];
  disconnected: [error: DevstreamsError | undefined];
  /** A connect attempt failed (or the socket closed); the next attempt is in `delayMs`. */
  retrying: [info: { error: DevstreamsError; delayMs: number; gateway: string }];
  /** The hub refused the device's credentials, or no longer knows it: the proxy has stopped reconnecting. */
  refused: [error: DevstreamsError];
  session: [info: { streamId: string; peerKey?: Buffer; cipher?: string; suite?: string }];
  sessionError: [error: Error];
  channel: [event: Parameters<NonNullable<DeviceHandlerOptions['onChannel']>>[0]];
  /** A resumable session lost its stream and waits for the service to come back. */
  suspended: [info: { sessionId: string; error?: Error }];
  /** A resumable session continued on a new stream. */
  resumed: [info: { sessionId: string; streamId: string; resent: number; downtimeMs: number; resumes: number }];
  /** A resumable session was given up (no stream back within the give-up time) or refused a resume attempt. */
  lost: [info: { sessionId: string; error: DevstreamsError }];
}

/** Default for `DeviceProxyOptions.maxSessions`. */
export const DEFAULT_MAX_DEVICE_SESSIONS = 16;
/** Default for `DeviceProxyOptions.maxStarting` (sshd's MaxStartups default is 10 too). */
export const DEFAULT_MAX_DEVICE_STARTING = 10;

/** The device's side of the handshake: which service keys may open sessions. */
function serviceVerifier(o: DeviceProxyOptions): PeerVerifier {
  if (o.acceptAnyService) return acceptAnyKey;
  const keys = o.serviceKeys ?? [];
  if (o.authorizedServices) return o.authorizedServices.verifier(keys);
  if (keys.length > 0) return allowKeys(keys);
  return () => {
    throw new DevstreamsError('ERR_HANDSHAKE_PEER_UNKNOWN', 'no service is authorized on this device');
  };
}

/**
 * The device side as a whole: a DeviceClient's control socket, and a mux session per accepted stream
 * whose channels go to allowed targets.
 */
export class DeviceProxy extends EventEmitter<DeviceProxyEvents> {
  readonly client: DeviceClient;
  private readonly sessions = new Set<Session>();
  private readonly verifyPeer: PeerVerifier;
  private readonly maxSessions: number;
  private readonly maxStarting: number;
  /**
   * Accepted stream requests whose session is not established yet (handshake running), oldest
   * first (a Set iterates in insertion order); aborting one closes its stream.
   */
  private readonly starting = new Set<AbortController>();
  private resumeTotal = 0;

  constructor(o: DeviceProxyOptions) {
    super();
    const { connectionString, ...clientOptions } = o;
    // Announcing the key lets services that trust the hub for identity check the handshake.
    this.client = DeviceClient.fromConnectionString(connectionString, { ...clientOptions, publicKey: o.staticKeys.publicKey });
    this.verifyPeer = serviceVerifier(o);
    this.maxSessions = o.maxSessions ?? DEFAULT_MAX_DEVICE_SESSIONS;
    if (!Number.isSafeInteger(this.maxSessions) || this.maxSessions < 1)
      throw new DevstreamsError('ERR_CONFIG', 'maxSessions must be a positive integer');
    this.maxStarting = o.maxStarting ?? DEFAULT_MAX_DEVICE_STARTING;
    if (!Number.isSafeInteger(this.maxStarting) || this.maxStarting < 1)
      throw new DevstreamsError('ERR_CONFIG', 'maxStarting must be a positive integer');
    this.client.on('connected', () => this.emit('connected'));
    this.client.on('disconnected', (e) => this.emit('disconnected', e));
    this.client.on('error', () => {}); // retried by the client; 'retrying' tells the story
    this.client.on('retrying', (info) => this.emit('retrying', info));
    this.client.on('refused', (err) => this.emit('refused', err));
    // The handler goes into the session at construction: the service opens channels right behind
    // the handshake, before anything could attach to a session handed back later.
    const onOpen = deviceChannelHandler({
      allow: o.allow,
      connectTimeoutMs: o.connectTimeoutMs,
      onChannel: (event) => this.emit('channel', event),
    });
    this.client.on('streamRequest', (request) => {
      // A resume continues a session already counted; only its handshake counts (as starting).
      const resume = parseResumeStreamName(request.streamName) !== undefined;
      if (!resume && this.sessions.size >= this.maxSessions) {
        request.reject(`device has ${this.maxSessions} sessions open (its limit)`);
        this.emit('sessionError', new DevstreamsError('ERR_RATE_LIMITED', `stream request rejected: ${this.maxSessions} sessions open`));
        return;
      }
      // Unauthenticated streams never refuse a newcomer: the oldest gives way. Refusing instead
      // would let anyone who can open streams (without a key the device accepts) hold every
      // slot against an authorized service by re-opening them before the handshake timeout.
      if (this.starting.size >= this.maxStarting) {
        const oldest = this.starting.values().next().value as AbortController;
        this.starting.delete(oldest);
        oldest.abort(`${this.maxStarting} streams in their handshake (the limit); dropped the oldest`);
        this.emit(
          'sessionError',
          new DevstreamsError('ERR_RATE_LIMITED', `dropped the oldest of ${this.maxStarting} streams still in their handshake`),
        );
      }
      const abort = new AbortController();
      this.starting.add(abort);
      request
        .acceptSession({
          staticKeys: o.staticKeys,
          verifyPeer: this.verifyPeer,
          allowPlaintext: o.allowPlaintext,
          crypto: o.crypto,
          mux: { onOpen },
          resume: o.resume,
          signal: abort.signal,
        })
        .finally(() => this.starting.delete(abort))
        .then(
          (ds) => {
            if (ds.resumed) return; // the held session continues; its 'resumed' event tells the story
            // Several handshakes may end together: the limit on established sessions holds here too.
            if (this.sessions.size >= this.maxSessions) {
              const err = new DevstreamsError('ERR_RATE_LIMITED', `device has ${this.maxSessions} sessions open (its limit)`);
              ds.session.close(err);
              this.emit('sessionError', err);
              return;
            }
            const r = ds.resumable;
            if (r) {
              r.events.on('suspended', (error) => this.emit('suspended', { sessionId: r.sessionId ?? '?', error }));
              r.events.on('resumed', (info) => {
                this.resumeTotal++;
                this.emit('resumed', { sessionId: r.sessionId ?? '?', streamId: ds.streamId, ...info });
              });
              r.events.on('lost', (error) => this.emit('lost', { sessionId: r.sessionId ?? '?', error }));
            }
            this.sessions.add(ds.session);
            ds.session.once('close', () => this.sessions.delete(ds.session));
            this.emit('session', {
              streamId: ds.streamId,
              peerKey: ds.secure?.session.remoteStatic,
              cipher: ds.secure?.session.cipher,
              suite: ds.secure?.session.suite,
            });
          },
          (err: Error) => this.emit('sessionError', err),
        );
    });
  }

  get deviceId(): string {
    return this.client.deviceId;
  }

  /** Open sessions (one per service proxy, normally). */
  get sessionCount(): number {
    return this.sessions.size;
  }

  /** Resumes of this proxy's sessions so far (a metric). */
  get resumeCount(): number {
    return this.resumeTotal;
  }

  /** Connects to the hub; resolves once the control socket is up the first time. */
  start(): Promise<void> {
    return this.client.open();
  }

  /** Stops taking streams and lets open channels finish (up to the mux go-away timeout). */
  async stop(): Promise<void> {
    await this.client.close();
    await Promise.all([...this.sessions].map((s) => s.goAway('device proxy stopping')));
  }
}
