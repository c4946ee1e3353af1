/**
 * Where the proxies keep their keys by default, and load-or-create of a static key pair. The
 * home folder is `$DEVSTREAMS_HOME`, else `~/.devstreams`.
 */
import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { generateStaticKeyPair, loadStaticKeyPair, saveStaticKeyPair, type StaticKeyPair } from '../crypto/index.js';

/** Where keys, known devices and control sockets live: `$DEVSTREAMS_HOME`, else `~/.devstreams`. */
export function devstreamsHome(): string {
  return process.env.DEVSTREAMS_HOME ?? join(homedir(), '.devstreams');
}

/** Default device key file for `deviceId`. */
export function defaultDeviceKeyPath(deviceId: string): string {
  return join(devstreamsHome(), 'devices', `${deviceId}.key`);
}

/** Default service key file. */
export function defaultServiceKeyPath(): string {
  return join(devstreamsHome(), 'service.key');
}

/** Default known-devices file (trust on first use, like ssh's known_hosts). */
export function defaultKnownDevicesPath(): string {
  return join(devstreamsHome(), 'known_devices');
}

/** Default authorized-services file of a device (the service keys it lets in, like sshd's authorized_keys). */
export function defaultAuthorizedServicesPath(): string {
  return join(devstreamsHome(), 'authorized_services');
}

/** Loads the key pair at `path`, creating it (mode 0600) on first use. */
export async function loadOrCreateKeyPair(path: string): Promise<{ keys: StaticKeyPair; created: boolean }> {
  try {
    return { keys: await loadStaticKeyPair(path), created: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const keys = generateStaticKeyPair();
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await saveStaticKeyPair(path, keys);
  return { keys, created: true };
}
