/**
 * Files that hold secrets (connection strings, TLS keys): written with mode 0600 so that only
 * the user can read them, and checked when read, with a warning when others could read them.
 * Like ssh, which warns about (and refuses) a private key readable by others; we warn, since a
 * connection string in a root-owned file readable by a service's group is a deliberate setup.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { DevstreamsError } from '../errors.js';

/** Mode bits that let someone other than the owner read, write or run the file. */
const OTHERS_BITS = 0o077;

/** A warning line when `path` can be read by its group or by anyone, else undefined (and on Windows, which has no modes). */
export function othersCanRead(path: string): string | undefined {
  if (process.platform === 'win32') return undefined;
  const mode = statSync(path).mode;
  if ((mode & OTHERS_BITS) === 0) return undefined;
  return `${path} holds a secret and is readable by others (mode ${(mode & 0o777).toString(8).padStart(3, '0')}); chmod 600 ${path}`;
}

/**
 * Reads a secret from `path`, trimmed; `what` names it in errors ("--connection-string-file").
 * `warn` receives the warning when others can read the file.
 */
export function readSecretFile(path: string, what: string, warn: (line: string) => void): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new DevstreamsError(
      'ERR_CONFIG',
      `cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  const warning = othersCanRead(path);
  if (warning !== undefined) warn(warning);
  return text;
}

/**
 * Writes `text` to `path` with mode 0600: into a new 0600 file beside it, renamed over `path`.
 * Writing into an existing file would put the secret in it while it still has its old mode (a
 * 0644 file is world-readable until a chmod), and into whatever inode it is (a file owned by
 * someone else, or linked elsewhere); the rename replaces the name and leaves that inode alone.
 */
export function writeSecretFile(path: string, text: string): void {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    // 'wx': a fresh file, created with 0600 (less the umask, which only takes bits away).
    writeFileSync(temp, text, { mode: 0o600, flag: 'wx' });
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw new DevstreamsError('ERR_CONFIG', `cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** One line on stderr, for warnings raised before a command's logger exists. */
export function warnLine(line: string): void {
  process.stderr.write(`devstreams: warning: ${line}\n`);
}
