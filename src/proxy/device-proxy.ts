/**
 * The device local proxy as a whole: keeps the control socket to the hub up, accepts each stream
 * the service asks for as an end-to-end encrypted mux session, and serves its channels against
 * the allow list. Embeddable; `devstreams device-proxy` is a thin shell around it.
 */
import { EventEmitter } from 'node:events';
import type { CryptoMode, PeerVerifier, StaticKeyPair } from '../crypto/index.js';
import { acceptAnyKey, allowKeys } from '../crypto/index.js';
import type { Session } from '../mux/index.js';
import { DeviceClient, type DeviceClientOptions } from '../sdk/index.js';
import { DevstreamsError } from '../errors.js';
import type { ResumeConfig } from '../resume/index.js';
import type { AllowList } from './allow-list.js';
import { deviceChannelHandler, type DeviceHandlerOptions } from './device-handler.js';

export interface DeviceProxyOptions extends DeviceClientOptions {
  connectionString: string;
  allow: AllowList;
  /** The device's static key pair (its identity in the end-to-end handshake). */
  staticKeys: StaticKeyPair;
  /** Service keys allowed to open sessions; empty accepts any service the hub lets through. */
  serviceKeys?: Buffer[];
  /** Accept streams a service opens without the record layer. Default false. */
  allowPlaintext?: boolean;
  crypto?: CryptoMode;
  connectTimeoutMs?: number;
  /** Limits the device holds resumable sessions with (give-up time...). Services choose resumption. */
  resume?: Partial<ResumeConfig>;
}

export interface DeviceProxyEvents {
  connected: [];
  disconnected: [error: DevstreamsError | undefined];
  session: [info: { streamId: string; peerKey?: Buffer; cipher?: string }];
  sessionError: [error: Error];
  channel: [event: Parameters<NonNullable<DeviceHandlerOptions['onChannel']>>[0]];
  /** A resumable session lost its stream and waits for the service to come back. */
  suspend: [info: { sessionId: string; error?: Error }];
  /** A resumable session continued on a new stream. */
  resume: [info: { sessionId: string; streamId: string; resent: number; downtimeMs: number; resumes: number }];
  /** A resumable session was given up (no stream back within the give-up time) or refused a resume attempt. */
  sessionLost: [info: { sessionId: string; error: DevstreamsError }];
}

export class DeviceProxy extends EventEmitter<DeviceProxyEvents> {
  readonly client: DeviceClient;
  private readonly sessions = new Set<Session>();
  private readonly verifyPeer: PeerVerifier;
  private resumeTotal = 0;

  constructor(o: DeviceProxyOptions) {
    super();
    const { connectionString, ...clientOptions } = o;
    // Announcing the key lets services that trust the hub for identity check the handshake.
    this.client = DeviceClient.fromConnectionString(connectionString, { ...clientOptions, publicKey: o.staticKeys.publicKey });
    this.verifyPeer = o.serviceKeys && o.serviceKeys.length > 0 ? allowKeys(o.serviceKeys) : acceptAnyKey;
    this.client.on('connected', () => this.emit('connected'));
    this.client.on('disconnected', (e) => this.emit('disconnected', e));
    this.client.on('error', () => {}); // retried by the client; 'disconnected' tells the story
    // The handler goes into the session at construction: the service opens channels right behind
    // the handshake, before anything could attach to a session handed back later.
    const onOpen = deviceChannelHandler({
      allow: o.allow,
      ...(o.connectTimeoutMs !== undefined ? { connectTimeoutMs: o.connectTimeoutMs } : {}),
      onChannel: (event) => this.emit('channel', event),
    });
    this.client.on('streamRequest', (request) => {
      request
        .acceptSession({
          staticKeys: o.staticKeys,
          verifyPeer: this.verifyPeer,
          ...(o.allowPlaintext ? { allowPlaintext: true } : {}),
          ...(o.crypto ? { crypto: o.crypto } : {}),
          mux: { onOpen },
          ...(o.resume ? { resume: o.resume } : {}),
        })
        .then(
          (ds) => {
            if (ds.resumed) return; // the held session continues; its 'resumed' event tells the story
            const r = ds.resumable;
            if (r) {
              r.events.on('suspended', (error) => this.emit('suspend', { sessionId: r.sessionId ?? '?', ...(error ? { error } : {}) }));
              r.events.on('resumed', (info) => {
                this.resumeTotal++;
                this.emit('resume', { sessionId: r.sessionId ?? '?', streamId: ds.streamId, ...info });
              });
              r.events.on('lost', (error) => this.emit('sessionLost', { sessionId: r.sessionId ?? '?', error }));
            }
            this.sessions.add(ds.session);
            ds.session.once('close', () => this.sessions.delete(ds.session));
            this.emit('session', {
              streamId: ds.streamId,
              ...(ds.secure ? { peerKey: ds.secure.session.remoteStatic, cipher: ds.secure.session.cipher } : {}),
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
