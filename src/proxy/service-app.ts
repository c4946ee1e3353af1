/**
 * The service local proxy as a whole: one device stream per device, opened through the hub on
 * first use (or at start), sealed end to end and checked against the pinned device key, carrying
 * every local connection as a channel. Embeddable; `devstreams service-proxy` is a thin shell.
 */
import type { CryptoMode, PeerVerifier, StaticKeyPair } from '../crypto/index.js';
import { ServiceClient, type ServiceClientOptions } from '../sdk/index.js';
import type { MuxConfig } from '../mux/index.js';
import type { ResumedInfo, ResumeConfig } from '../resume/index.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { DevstreamsError } from '../errors.js';
import type { ForwardSpec } from './forward-spec.js';
import { ServiceProxy, type ServiceProxyOptions } from './service-proxy.js';
import { SessionSource, type SessionSourceOptions } from './session-source.js';

/** Everything `createServiceApp` needs: the hub, the device, the listeners, the end-to-end security and what to report. */
export interface ServiceAppOptions extends ServiceClientOptions {
  connectionString: string;
  deviceId: string;
  forwards: ForwardSpec[];
  socks?: { host: string; port: number };
  /** False: no record layer (the hub can read the traffic); for measurement only. Default true. */
  encrypt?: boolean;
  /** The service's static key pair. Required when encrypting. */
  staticKeys?: StaticKeyPair;
  /** Checks the device's key (known-devices file, or an expected key). Required when encrypting, unless `trustHub`. */
  verifyDevice?: PeerVerifier;
  /** Take the device's key from the hub (the key the device announced) instead of pinning it here. */
  trustHub?: boolean;
  crypto?: CryptoMode;
  mux?: Partial<MuxConfig>;
  /** How long a connection waits for the device stream to open. */
  waitTimeoutMs?: number;
  /**
   * How long opening the stream waits for an offline device to connect before refusing, ms
   * (default DEFAULT_DEVICE_WAIT_MS): a device proxy that is still starting or reconnecting
   * should not cost the first connection.
   */
  deviceWaitMs?: number;
  /** Told once per stream open when it starts waiting for an offline device. */
  onDeviceWait?(deviceId: string, waitMs: number): void;
  onState?: SessionSourceOptions['onState'];
  onConnection?: ServiceProxyOptions['onConnection'];
  onChannelOpen?: ServiceProxyOptions['onChannelOpen'];
  /**
   * Resumption of the device session across stream drops and hub restarts: on (default) or its
   * limits; false opens plain sealed sessions that end with their stream. Ignored when not encrypting.
   */
  resume?: boolean | Partial<ResumeConfig>;
  /** Told about resumption: the stream dropped, the session continued, a reconnect attempt failed, the session was given up. */
  onResume?(event: ResumeEvent): void;
}

/** What `onResume` hears. */
export type ResumeEvent =
  | { kind: 'suspended'; sessionId: string; error?: Error }
  | { kind: 'resumed'; sessionId: string; info: ResumedInfo }
  | { kind: 'attemptFailed'; sessionId: string; error: Error; attempt: number }
  | { kind: 'lost'; sessionId: string; error: DevstreamsError };

/** Default of `deviceWaitMs`, ms. */
export const DEFAULT_DEVICE_WAIT_MS = 5_000;
/** How often an open waiting for an offline device asks the hub again, ms. */
export const DEVICE_WAIT_POLL_MS = 250;

/** Runs `open`, trying again while the device is offline, for up to `waitMs`. */
async function whileOffline<T>(waitMs: number, open: () => Promise<T>, onWait: () => void): Promise<T> {
  const deadline = Date.now() + waitMs;
  let told = false;
  for (;;) {
    try {
      return await open();
    } catch (err) {
      if (!(err instanceof DevstreamsError) || err.code !== 'ERR_DEVICE_OFFLINE' || Date.now() + DEVICE_WAIT_POLL_MS > deadline) throw err;
      if (!told) onWait();
      told = true;
      await sleep(DEVICE_WAIT_POLL_MS);
    }
  }
}

/** Builds (does not start) a service proxy for one device. */
export function createServiceApp(o: ServiceAppOptions): { proxy: ServiceProxy; source: SessionSource; client: ServiceClient } {
  const client = ServiceClient.fromConnectionString(o.connectionString, { ca: o.ca });
  const resume = o.resume ?? true;
  let sessionId = '?';
  const source = new SessionSource({
    open: async () => {
      const waitMs = o.deviceWaitMs ?? DEFAULT_DEVICE_WAIT_MS;
      const ds = await whileOffline(
        waitMs,
        () =>
          client.connect(o.deviceId, {
            encrypt: o.encrypt,
            staticKeys: o.staticKeys,
            verifyPeer: o.verifyDevice,
            trustHub: o.trustHub,
            crypto: o.crypto,
            mux: o.mux,
            resume,
            onResumeAttemptFailed: (error: Error, attempt: number) => o.onResume?.({ kind: 'attemptFailed', sessionId, error, attempt }),
          }),
        () => o.onDeviceWait?.(o.deviceId, waitMs),
      );
      const r = ds.resumable;
      if (r && o.onResume) {
        const tell = o.onResume;
        sessionId = r.sessionId ?? '?';
        const id = sessionId;
        r.events.on('suspended', (error) => tell({ kind: 'suspended', sessionId: id, error }));
        r.events.on('resumed', (info) => tell({ kind: 'resumed', sessionId: id, info }));
        r.events.on('lost', (error) => tell({ kind: 'lost', sessionId: id, error }));
      }
      return ds.session;
    },
    waitTimeoutMs: o.waitTimeoutMs,
    onState: o.onState,
  });
  const proxy = new ServiceProxy({
    source,
    forwards: o.forwards,
    socks: o.socks,
    onConnection: o.onConnection,
    onChannelOpen: o.onChannelOpen,
  });
  return { proxy, source, client };
}
