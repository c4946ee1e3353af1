/**
 * Who a session accepts as its peer. A `PeerVerifier` sees the peer's static public key once the
 * handshake has authenticated it, and throws a coded error to refuse it. Three policies:
 * pinning in a known-devices file (trust on first use, like ssh known_hosts), an expected key
 * given by the caller (e.g. from the hub registry), and an allow-list of keys.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DevstreamsError } from '../errors.js';
import { decodePublicKey, encodePublicKey } from './keys.js';

/** Decides whether to accept the peer's static key; throws a DevstreamsError to refuse. */
export type PeerVerifier = (remoteStatic: Buffer) => void | Promise<void>;

/** Accepts exactly `expected` (raw or base64); anything else is ERR_HANDSHAKE_PEER_UNKNOWN. */
export function expectKey(expected: Buffer | string): PeerVerifier {
  const want = typeof expected === 'string' ? decodePublicKey(expected) : expected;
  return (remote) => {
    if (!remote.equals(want)) {
      throw new DevstreamsError(
        'ERR_HANDSHAKE_PEER_UNKNOWN',
        `peer proved key ${encodePublicKey(remote)}, expected ${encodePublicKey(want)}`,
      );
    }
  };
}

/** Accepts any key in `allowed` (raw or base64); others are ERR_HANDSHAKE_PEER_UNKNOWN. */
export function allowKeys(allowed: ReadonlyArray<Buffer | string>): PeerVerifier {
  const set = new Set(allowed.map((k) => encodePublicKey(typeof k === 'string' ? decodePublicKey(k) : k)));
  return (remote) => {
    if (!set.has(encodePublicKey(remote))) {
      throw new DevstreamsError('ERR_HANDSHAKE_PEER_UNKNOWN', `peer key ${encodePublicKey(remote)} is not in the allow-list`);
    }
  };
}

/** Accepts any key. Only for tests and for a peer that is authenticated some other way. */
export const acceptAnyKey: PeerVerifier = () => {};

/**
 * A known-devices file: one line per device, `<deviceId> x25519 <base64 key>`; `#` comments and
 * blank lines are kept. Reads the file on every check so an operator's edit (re-pinning) takes
 * effect without a restart.
 */
export class KnownDevices {
  /** Serialises check-and-pin and every read-modify-write of the file within this process. */
  private writing: Promise<unknown> = Promise.resolve();

  constructor(readonly path: string) {}

  /** The pinned key of `deviceId`, if any. */
  async get(deviceId: string): Promise<Buffer | undefined> {
    for (const line of await this.lines()) {
      const entry = parseLine(line);
      if (entry && entry.id === deviceId) return entry.key;
    }
    return undefined;
  }

  /**
   * Checks `key` against the pin for `deviceId`. Unknown device: pins it when `trustOnFirstUse`,
   * else ERR_HANDSHAKE_PEER_UNKNOWN. Different key: ERR_HANDSHAKE_PEER_KEY_CHANGED, always.
   */
  async verify(deviceId: string, key: Buffer, trustOnFirstUse = true): Promise<'match' | 'pinned'> {
    // Check and pin as one step, so two first contacts racing with different keys cannot both win.
    const result = this.writing.then(() => this.verifyNow(deviceId, key, trustOnFirstUse));
    this.writing = result.catch(() => {});
    return result;
  }

  private async verifyNow(deviceId: string, key: Buffer, trustOnFirstUse: boolean): Promise<'match' | 'pinned'> {
    const pinned = await this.get(deviceId);
    if (pinned) {
      if (pinned.equals(key)) return 'match';
      throw new DevstreamsError(
        'ERR_HANDSHAKE_PEER_KEY_CHANGED',
        `@@@ DEVICE KEY CHANGED @@@ device ${deviceId} proved key ${encodePublicKey(key)} but ${this.path} pins ${encodePublicKey(pinned)}. ` +
          `Someone may be impersonating the device, or it was re-enrolled. If you know it was re-enrolled, re-pin it: ` +
          `delete its line (sed -i '/^${deviceId} x25519 /d' ${this.path}) and connect again, or pass the key you ` +
          `checked with the device's owner (service-proxy --device-key KEY; KnownDevices.pin in code).`,
      );
    }
    if (!trustOnFirstUse) {
      throw new DevstreamsError('ERR_HANDSHAKE_PEER_UNKNOWN', `device ${deviceId} is not in ${this.path} and trust-on-first-use is off`);
    }
    await this.write([...(await this.lines()), `${deviceId} x25519 ${encodePublicKey(key)}`]);
    return 'pinned';
  }

  /** Pins (or re-pins, replacing the old line) `deviceId` to `key`. */
  async pin(deviceId: string, key: Buffer): Promise<void> {
    if (!/^[A-Za-z0-9._:@-]+$/.test(deviceId))
      throw new DevstreamsError('ERR_CONFIG', `device id ${JSON.stringify(deviceId)} has characters a known-devices line cannot hold`);
    await this.update((lines) => [
      ...lines.filter((line) => parseLine(line)?.id !== deviceId),
      `${deviceId} x25519 ${encodePublicKey(key)}`,
    ]);
  }

  /** Forgets `deviceId`; the next handshake pins again (when trust-on-first-use is on). */
  async remove(deviceId: string): Promise<void> {
    await this.update((lines) => lines.filter((line) => parseLine(line)?.id !== deviceId));
  }

  private update(change: (lines: string[]) => string[]): Promise<void> {
    const next = this.writing.then(async () => this.write(change(await this.lines())));
    this.writing = next.catch(() => {});
    return next;
  }

  /**
   * A verifier for one device, for `secureTransport({ verifyPeer })`. `onPinned` hears of a key
   * pinned on first use, so that a program can say so (like ssh's "Permanently added ...").
   */
  verifier(deviceId: string, trustOnFirstUse = true, onPinned?: (key: Buffer) => void): PeerVerifier {
    return async (remote) => {
      if ((await this.verify(deviceId, remote, trustOnFirstUse)) === 'pinned') onPinned?.(remote);
    };
  }

  private async lines(): Promise<string[]> {
    try {
      return (await readFile(this.path, 'utf8')).split('\n').filter((l) => l.length > 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  private async write(lines: string[]): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    await writeFile(tmp, `${lines.join('\n')}\n`, { mode: 0o600 });
    await rename(tmp, this.path); // atomic replace: a reader never sees half a file
  }
}

function parseLine(line: string): { id: string; key: Buffer } | undefined {
  const trimmed = line.trim();
  if (!trimmed || trimmed.startsWith('#')) return undefined;
  const [id, kind, key] = trimmed.split(/\s+/);
  if (!id || kind !== 'x25519' || !key) return undefined;
  try {
    return { id, key: decodePublicKey(key) };
  } catch {
    return undefined;
  }
}
