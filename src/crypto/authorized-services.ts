/**
 * The services a device lets open sessions, by their static keys, like sshd's `authorized_keys`:
 * one line per service, `x25519 <base64 key> [name]`; `#` comments and blank lines are kept. The
 * file is read on every handshake (a resume included), so authorizing or revoking a service takes
 * effect without a restart; sessions already open run on until they end.
 */
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DevstreamsError } from '../errors.js';
import { decodePublicKey, encodePublicKey } from './keys.js';
import type { PeerVerifier } from './trust.js';

/** One authorized service. */
export interface AuthorizedService {
  key: Buffer;
  /** Who it is (an operator, a tool); free text without spaces, may be empty. */
  name: string;
}

const NAME = /^[A-Za-z0-9._:@+-]{1,64}$/;

export class AuthorizedServices {
  /** Serialises read-modify-write of the file within this process. */
  private writing: Promise<unknown> = Promise.resolve();

  constructor(readonly path: string) {}

  /** Every authorized service, in file order. A missing file is an empty list. */
  async list(): Promise<AuthorizedService[]> {
    const out: AuthorizedService[] = [];
    for (const line of await this.lines()) {
      const entry = parseLine(line);
      if (entry) out.push(entry);
    }
    return out;
  }

  /** Authorizes `key` under `name` (replacing a line with the same key). Returns false if it was there already with that name. */
  async add(key: Buffer, name = ''): Promise<boolean> {
    if (name !== '' && !NAME.test(name))
      throw new DevstreamsError('ERR_CONFIG', `service name ${JSON.stringify(name)}: use 1-64 letters, digits and . _ : @ + -`);
    const encoded = encodePublicKey(key);
    let changed = false;
    await this.update((lines) => {
      const same = lines.some((l) => {
        const e = parseLine(l);
        return e?.key.equals(key) && e.name === name;
      });
      if (same) return lines;
      changed = true;
      return [...lines.filter((l) => !parseLine(l)?.key.equals(key)), `x25519 ${encoded}${name ? ` ${name}` : ''}`];
    });
    return changed;
  }

  /**
   * Revokes `which`, a key (base64) or a name: every line carrying that key, or any key a line
   * named `which` carries (a key written twice under two names would otherwise stay authorized
   * through the other line). Returns how many lines went.
   */
  async revoke(which: string): Promise<number> {
    let key: Buffer | undefined;
    try {
      key = decodePublicKey(which);
    } catch {
      key = undefined;
    }
    let removed = 0;
    await this.update((lines) => {
      const keys = lines
        .map(parseLine)
        .filter(
          (e): e is AuthorizedService =>
            e !== undefined && ((key !== undefined && e.key.equals(key)) || (e.name !== '' && e.name === which)),
        )
        .map((e) => e.key);
      return lines.filter((l) => {
        const e = parseLine(l);
        const hit = e !== undefined && keys.some((k) => k.equals(e.key));
        if (hit) removed++;
        return !hit;
      });
    });
    return removed;
  }

  /**
   * What is wrong with the file, one line each, for a warning at device start: lines that are not
   * a key (they authorize nothing, which their author did not mean), and a file or directory
   * others can write or that belongs to someone else (sshd's StrictModes refuses such a file:
   * whoever can write it can let any service in). Empty when all is well or the file is missing.
   */
  async problems(): Promise<string[]> {
    const out: string[] = [];
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch {
      return out; // missing or unreadable: the start-up check and every handshake say so
    }
    text.split('\n').forEach((line, i) => {
      const t = line.trim();
      if (t !== '' && !t.startsWith('#') && parseLine(line) === undefined)
        out.push(`${this.path} line ${i + 1} is not 'x25519 KEY [NAME]' and authorizes nothing`);
    });
    if (process.platform !== 'win32') {
      const uid = process.getuid?.();
      for (const p of [this.path, dirname(this.path)]) {
        const st = await stat(p);
        if ((st.mode & 0o022) !== 0 && !((st.mode & 0o1000) !== 0 && p !== this.path)) {
          out.push(
            `${p} is writable by others (mode ${(st.mode & 0o777).toString(8).padStart(3, '0')}): they can authorize any service; chmod go-w ${p}`,
          );
        }
        if (uid !== undefined && st.uid !== uid && st.uid !== 0)
          out.push(`${p} belongs to another user (uid ${st.uid}), who can authorize any service`);
      }
    }
    return out;
  }

  /** The authorized entry for `key`, if any. */
  async find(key: Buffer): Promise<AuthorizedService | undefined> {
    return (await this.list()).find((e) => e.key.equals(key));
  }

  /**
   * A verifier for the device's side of the handshake: the service's key must be in this file
   * or among `extra` (keys given on the command line).
   */
  verifier(extra: readonly Buffer[] = []): PeerVerifier {
    return async (remote) => {
      if (extra.some((k) => k.equals(remote))) return;
      if (await this.find(remote)) return;
      throw new DevstreamsError(
        'ERR_HANDSHAKE_PEER_UNKNOWN',
        `service key ${encodePublicKey(remote)} is not authorized on this device; authorize it with 'devstreams key authorize ${encodePublicKey(remote)} --name NAME' (adds it to ${this.path})`,
      );
    };
  }

  private update(change: (lines: string[]) => string[]): Promise<void> {
    const next = this.writing.then(async () => {
      const before = await this.lines();
      const after = change(before);
      if (after !== before) await this.write(after);
    });
    this.writing = next.catch(() => {});
    return next;
  }

  private async lines(): Promise<string[]> {
    try {
      return (await readFile(this.path, 'utf8')).split('\n').filter((l) => l.length > 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new DevstreamsError(
        'ERR_CONFIG',
        `cannot read authorized services ${this.path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
        { cause: err },
      );
    }
  }

  private async write(lines: string[]): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.${process.pid}.tmp`;
    await writeFile(tmp, `${lines.join('\n')}\n`, { mode: 0o600 });
    await rename(tmp, this.path); // atomic replace: a handshake never reads half a file
  }
}

function parseLine(line: string): AuthorizedService | undefined {
  const trimmed = line.trim();
  if (!trimmed || trimmed.startsWith('#')) return undefined;
  const [kind, key, name] = trimmed.split(/\s+/);
  if (kind !== 'x25519' || !key) return undefined;
  try {
    return { key: decodePublicKey(key), name: name ?? '' };
  } catch {
    return undefined;
  }
}
