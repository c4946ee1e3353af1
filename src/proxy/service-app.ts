/**
 * The service local proxy as a whole: one device stream per device, opened through the hub on
 * first use (or at start), sealed end to end and checked against the pinned device key, carrying
 * every local connection as a channel. Embeddable; `devstreams service-proxy` is a thin shell.
 */
import type { CryptoMode, PeerVerifier, StaticKeyPair } from '../crypto/index.js';
import { ServiceClient, type ServiceClientOptions } from '../sdk/index.js';
import type { MuxConfig } from '../mux/index.js';
import type { ForwardSpec } from './forward-spec.js';
import { ServiceProxy, type ServiceProxyOptions } from './service-proxy.js';
import { SessionSource, type SessionSourceOptions } from './session-source.js';

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
  onState?: SessionSourceOptions['onState'];
  onConnection?: ServiceProxyOptions['onConnection'];
}

/** Builds (does not start) a service proxy for one device. */
export function createServiceApp(o: ServiceAppOptions): { proxy: ServiceProxy; source: SessionSource; client: ServiceClient } {
  const client = ServiceClient.fromConnectionString(o.connectionString, o.ca !== undefined ? { ca: o.ca } : {});
  const source = new SessionSource({
    open: async () =>
      (
        await client.connect(o.deviceId, {
          ...(o.encrypt === false ? { encrypt: false } : {}),
          ...(o.staticKeys ? { staticKeys: o.staticKeys } : {}),
          ...(o.verifyDevice ? { verifyPeer: o.verifyDevice } : {}),
          ...(o.trustHub ? { trustHub: true } : {}),
          ...(o.crypto ? { crypto: o.crypto } : {}),
          ...(o.mux ? { mux: o.mux } : {}),
        })
      ).session,
    ...(o.waitTimeoutMs !== undefined ? { waitTimeoutMs: o.waitTimeoutMs } : {}),
    ...(o.onState ? { onState: o.onState } : {}),
  });
  const proxy = new ServiceProxy({
    source,
    forwards: o.forwards,
    ...(o.socks ? { socks: o.socks } : {}),
    ...(o.onConnection ? { onConnection: o.onConnection } : {}),
  });
  return { proxy, source, client };
}
