/** The service side's end-to-end security from flags: its key, and how it checks the device's key. Shared by service-proxy and connect. */
import type { Logger } from 'pino';
import { KnownDevices, encodePublicKey, expectKey, type PeerVerifier, type StaticKeyPair } from '../crypto/index.js';
import { defaultKnownDevicesPath, defaultServiceKeyPath, loadOrCreateKeyPair } from '../proxy/index.js';
import { resolve } from 'node:path';
import type { ControlIdentity } from '../proxy/control-socket.js';
import { DevstreamsError } from '../errors.js';
import { parsePublicKeys } from './common.js';

/** The service commands' key flags: the service key file and how the device's key is checked. */
export interface ServiceSecurityFlags {
  key?: string;
  knownDevices?: string;
  deviceKey?: string;
  trustHub?: boolean;
}

/** The service key and the one device-key check the flags chose: trust the hub, or verify against a pinned or known key. */
export type ServiceSecurity = { staticKeys: StaticKeyPair; trustHub: true } | { staticKeys: StaticKeyPair; verifyDevice: PeerVerifier };

/** Loads (or creates) the service key and picks the device-key check the flags ask for. */
export async function serviceSecurity(
  o: ServiceSecurityFlags,
  deviceId: string,
  log: Logger,
  /** Also told notices meant for the user (a control master passes them to its client). */
  onNotice?: (text: string) => void,
): Promise<ServiceSecurity> {
  const keyPath = o.key ?? defaultServiceKeyPath();
  const { keys } = await loadOrCreateKeyPair(keyPath);
  if (o.trustHub && (o.deviceKey || o.knownDevices))
    throw new DevstreamsError('ERR_CONFIG', '--trust-hub excludes --device-key and --known-devices');
  const expected = parsePublicKeys(o.deviceKey ? [o.deviceKey] : [], '--device-key')[0];
  const knownPath = o.knownDevices ?? defaultKnownDevicesPath();
  log.info(
    {
      publicKey: encodePublicKey(keys.publicKey),
      keyFile: keyPath,
      deviceKey: o.trustHub ? 'from the hub (--trust-hub)' : expected ? 'pinned by flag' : knownPath,
    },
    'service key',
  );
  if (o.trustHub) return { staticKeys: keys, trustHub: true };
  // First contact pins the device's key; say so, as ssh does for a new host.
  const pinned = (key: Buffer): void => {
    const text = `Permanently added device ${deviceId} (x25519 ${encodePublicKey(key)}) to the list of known devices (${knownPath})`;
    log.warn({ deviceId, deviceKey: encodePublicKey(key), knownDevices: knownPath }, text);
    onNotice?.(text);
  };
  return { staticKeys: keys, verifyDevice: expected ? expectKey(expected) : new KnownDevices(knownPath).verifier(deviceId, true, pinned) };
}

/** The control identity of a client with these flags and service identity: the default control path hashes it. */
export function controlIdentity(o: ServiceSecurityFlags & { plaintext?: boolean }, keyName: string): ControlIdentity {
  return {
    keyName,
    keyFile: resolve(o.key ?? defaultServiceKeyPath()),
    knownDevices: resolve(o.knownDevices ?? defaultKnownDevicesPath()),
    deviceKey: o.deviceKey,
    trustHub: o.trustHub,
    plaintext: o.plaintext,
  };
}
