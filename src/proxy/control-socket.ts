/**
 * The control socket of `devstreams connect`, like ssh's ControlMaster: one process (the master)
 * holds the device stream and listens on a Unix socket that only its user can open; every other
 * `connect` to the same device asks it for a channel instead of opening a stream of its own, so a
 * second ssh to a device costs no hub round trip and no handshake.
 *
 * Wire, one exchange per Unix connection, then raw bytes both ways (the channel):
 *   client -> master   `open HOST:PORT\n`  (or `exit\n`: the master stops)
 *   master -> client   `ok\n` once the device accepted, or `err CODE message\n` and close;
 *                      before either, `note TEXT\n` lines for the user (a newly pinned device key)
 * The master waits for the device's answer before `ok` so that a refused target reaches the
 * client as its code; ssh, scp, git and rsync wait for the server's first bytes anyway.
 */
import net from 'node:net';
import { chmodSync, linkSync, lstatSync, mkdirSync, unlinkSync, type Stats } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { once } from 'node:events';
import { DevstreamsError, type ErrorCode } from '../errors.js';
import type { Channel } from '../mux/index.js';
import { bridge } from './bridge.js';
import type { SessionSource } from './session-source.js';
import { devstreamsHome } from './key-files.js';

/** Most `note` lines a client reads before its answer. */
const MAX_NOTES = 16;

/** Longest request line a master reads before it drops the connection. */
export const MAX_CONTROL_LINE = 512;

/**
 * What a client expects of the device stream it joins, besides hub and device: the service
 * identity and every end-to-end security choice. A master serves whoever reaches its socket, so
 * two clients that differ in any of these must not share one (ssh's %C hashes its identity in
 * the same way); undefined fields mean the defaults.
 */
export interface ControlIdentity {
  /** SharedAccessKeyName of the connection string. */
  keyName: string;
  /** The service key file, resolved. */
  keyFile?: string;
  /** The known-devices file, resolved. */
  knownDevices?: string;
  /** A pinned device key (base64). */
  deviceKey?: string;
  trustHub?: boolean;
  /** No end-to-end security at all (service-proxy --plaintext): never a default connect's master. */
  plaintext?: boolean;
}

/** The control socket for `deviceId` on the hub `hostName`: short, since a Unix socket path is limited to about 104 bytes. */
export function defaultControlPath(hostName: string, deviceId: string, identity: ControlIdentity): string {
  const fields = [
    hostName,
    deviceId,
    identity.keyName,
    identity.keyFile ?? '',
    identity.knownDevices ?? '',
    identity.deviceKey ?? '',
    identity.trustHub ? 'trust-hub' : '',
    identity.plaintext ? 'plaintext' : '',
  ];
  const digest = createHash('sha256').update(fields.join('\0')).digest('hex').slice(0, 16);
  return join(devstreamsHome(), 'control', `${digest}.sock`);
}

/** Reads one `\n`-terminated line of at most MAX_CONTROL_LINE bytes; the rest stays in the socket. */
async function readLine(socket: net.Socket): Promise<string | undefined> {
  let buffered = Buffer.alloc(0);
  for (;;) {
    const chunk = socket.read() as Buffer | null;
    if (chunk === null) {
      if (socket.readableEnded || socket.destroyed) return undefined;
      await Promise.race([once(socket, 'readable'), once(socket, 'end'), once(socket, 'close')]);
      continue;
    }
    buffered = Buffer.concat([buffered, chunk]);
    const nl = buffered.indexOf(0x0a);
    if (nl >= 0) {
      if (nl + 1 < buffered.length) socket.unshift(buffered.subarray(nl + 1));
      return buffered.subarray(0, nl).toString('utf8');
    }
    if (buffered.length > MAX_CONTROL_LINE) return undefined;
  }
}

/** Where a control master listens, the device stream it shares, and what it reports. */
export interface ControlServerOptions {
  path: string;
  source: SessionSource;
  /** Told about each channel, for logs. */
  onChannel?(event: { target: string; outcome: 'opened' | 'failed' | 'closed'; error?: Error }): void;
  /** A channel was asked for (before it opens or fails). */
  onRequest?(): void;
  /** An `exit` request arrived. */
  onExit?(): void;
}

/** The master's side: serves channels of `source`'s session to local `connect` clients. */
export class ControlServer {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  /** Clients waiting for their channel's answer: they are told notices. */
  private readonly waiting = new Set<net.Socket>();
  private active = 0;
  private idleListeners: (() => void)[] = [];
  /** The socket file this server put at the path (device and inode), so it never removes another's. */
  private owned: { dev: number; ino: number } | undefined;

  constructor(private readonly options: ControlServerOptions) {
    this.server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      socket.on('error', () => {});
      void this.serve(socket);
    });
  }

  /** Channels being served now. */
  get activeChannels(): number {
    return this.active;
  }

  /**
   * Listens on the path, the socket mode 600, in a directory of mode 700 (created so if missing).
   * Throws EADDRINUSE (as a Node error) when a file is at the path already: a live master, or one
   * killed without cleanup (see removeStaleSocket).
   *
   * The listener is bound to a name of its own and then hard-linked to the path: link() fails
   * when the path exists, and libuv unlinks the name it bound when the listener closes, which at
   * the path itself would remove a successor's socket; this way it removes only the private name.
   */
  async listen(): Promise<void> {
    prepareControlDir(dirname(this.options.path));
    const bound = `${this.options.path}.${process.pid}.tmp`;
    removeOwnSocket(bound);
    // The umask applies to the socket file while it is created; chmod follows at once.
    const oldMask = process.umask(0o177);
    try {
      this.server.listen(bound);
      await Promise.race([once(this.server, 'listening'), once(this.server, 'error').then(([err]) => Promise.reject(err as Error))]);
    } finally {
      process.umask(oldMask);
    }
    try {
      chmodSync(bound, 0o600);
      linkSync(bound, this.options.path);
    } catch (err) {
      await new Promise<void>((resolve) => this.server.close(() => resolve()));
      if ((err as NodeJS.ErrnoException).code === 'EEXIST')
        throw Object.assign(new Error(`${this.options.path} exists`), { code: 'EADDRINUSE' });
      throw err;
    } finally {
      try {
        unlinkSync(bound);
      } catch {
        // closed above already
      }
    }
    const st = lstatSync(this.options.path);
    this.owned = { dev: st.dev, ino: st.ino };
  }

  /** Sends `text` as a `note` line to every client still waiting for its channel's answer. */
  notify(text: string): void {
    const line = `note ${text.replace(/\n/g, ' ').slice(0, MAX_CONTROL_LINE - 6)}\n`;
    for (const s of this.waiting) s.write(line);
  }

  /** Calls `fn` each time the last channel ends. */
  onIdle(fn: () => void): void {
    this.idleListeners.push(fn);
  }

  /**
   * Removes the socket file (only if it is still the one this server made: a successor's stays),
   * stops listening and ends every channel. The channels end first: server.close() waits for
   * every connection, so awaiting it before would wait for the channels' users.
   */
  async close(): Promise<void> {
    if (this.owned) {
      try {
        const st = lstatSync(this.options.path);
        if (st.dev === this.owned.dev && st.ino === this.owned.ino) unlinkSync(this.options.path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      this.owned = undefined;
    }
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
  }

  private async serve(socket: net.Socket): Promise<void> {
    const line = await readLine(socket);
    if (line === undefined) return void socket.destroy();
    if (line === 'exit') {
      socket.end('ok\n');
      this.options.onExit?.();
      return;
    }
    const m = /^open (\[[0-9a-fA-F:.]+\]|[^\s:]+):(\d{1,5})$/.exec(line);
    if (!m || Number(m[2]) > 65535) return void socket.end('err ERR_BAD_REQUEST expected "open HOST:PORT"\n');
    const host = m[1]!.replace(/^\[|\]$/g, '');
    const port = Number(m[2]);
    const target = `${host}:${port}`;
    this.options.onRequest?.();
    this.active++;
    this.waiting.add(socket);
    let channel: Channel;
    try {
      const session = await this.options.source.get();
      channel = session.openChannel({ host, port });
    } catch (err) {
      this.waiting.delete(socket);
      this.refuse(socket, target, err as Error);
      return;
    }
    const answer = await new Promise<Error | undefined>((resolve) => {
      channel.once('accepted', () => resolve(undefined));
      channel.once('error', (err: Error) => resolve(err));
    });
    this.waiting.delete(socket);
    if (answer) return this.refuse(socket, target, answer);
    this.options.onChannel?.({ target, outcome: 'opened' });
    socket.write('ok\n');
    bridge(socket, channel, {
      onDone: (error) => {
        this.options.onChannel?.({ target, outcome: 'closed', error });
        this.release();
      },
    });
    socket.resume();
  }

  private refuse(socket: net.Socket, target: string, err: Error): void {
    this.options.onChannel?.({ target, outcome: 'failed', error: err });
    const code = err instanceof DevstreamsError ? err.code : 'ERR_CHANNEL_RESET';
    socket.end(`err ${code} ${err.message.replace(/\n/g, ' ')}\n`);
    this.release();
  }

  private release(): void {
    if (--this.active === 0) for (const fn of this.idleListeners) fn();
  }
}

/**
 * The client's side: asks the master at `path` for a channel to `host:port`. Resolves with the
 * socket (now carrying the channel) after `ok`; rejects with the master's code after `err`, or
 * with the Node error (ENOENT, ECONNREFUSED) when no master listens.
 */
export async function requestChannel(path: string, host: string, port: number, onNotice?: (text: string) => void): Promise<net.Socket> {
  const socket = net.createConnection({ path, allowHalfOpen: true });
  await Promise.race([once(socket, 'connect'), once(socket, 'error').then(([err]) => Promise.reject(err as Error))]);
  socket.write(`open ${host.includes(':') ? `[${host}]` : host}:${port}\n`);
  let line = await readLine(socket);
  // `note TEXT` lines (for the user) may precede the answer; a bounded number of them.
  for (let notes = 0; line?.startsWith('note ') && notes < MAX_NOTES; notes++) {
    onNotice?.(line.slice(5));
    line = await readLine(socket);
  }
  if (line === 'ok') return socket;
  socket.destroy();
  const m = /^err (\S+) (.*)$/.exec(line ?? '');
  if (m) throw new DevstreamsError(m[1] as ErrorCode, m[2]!);
  throw new DevstreamsError('ERR_CHANNEL_RESET', 'the control master closed the connection without an answer');
}

/** Asks the master at `path` to stop (`ssh -O exit`). Resolves false when none listens. */
export async function requestExit(path: string): Promise<boolean> {
  const socket = net.createConnection({ path });
  try {
    await Promise.race([once(socket, 'connect'), once(socket, 'error').then(([err]) => Promise.reject(err as Error))]);
  } catch {
    return false;
  }
  socket.write('exit\n');
  await readLine(socket);
  socket.destroy();
  return true;
}

/** True when a master answers on `path` (connects; sends nothing). */
export async function masterListens(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection({ path });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Creates the control directory (mode 700) if missing. An existing one keeps its mode (it may be
 * a shared directory such as /tmp under --control-path), but one that others can write to and
 * that is not sticky is refused: anyone could replace the socket there.
 */
export function prepareControlDir(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
    chmodSync(dir, 0o700); // the umask may have narrowed it further, or widened nothing
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      chmodSync(dir, 0o700);
      return;
    }
    if (code !== 'EEXIST') throw err;
  }
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new DevstreamsError('ERR_CONFIG', `control socket directory ${dir} is not a directory`);
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) {
    throw new DevstreamsError(
      'ERR_CONFIG',
      `control socket directory ${dir} is writable by others and not sticky (mode ${(st.mode & 0o7777).toString(8)}): anyone could replace the socket; use a private directory`,
    );
  }
}

/** Removes `path` only if it is a socket owned by this user; anything else there is not ours to delete. */
function removeOwnSocket(path: string): void {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isSocket() || (process.getuid !== undefined && st.uid !== process.getuid())) {
    throw new DevstreamsError('ERR_CONFIG', `${path} exists and is not a control socket of this user; refusing to replace it`);
  }
  try {
    unlinkSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * Removes a socket file no master listens on any more (a master killed without cleanup). Only a
 * socket of this user: a --control-path that names some other file is refused, not deleted.
 */
export function removeStaleSocket(path: string): void {
  removeOwnSocket(path);
}
