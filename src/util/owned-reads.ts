/**
 * Reads of a local TCP (or Unix) socket into a buffer we own: Node's `onread` mode, on a socket
 * that already exists. A socket read the ordinary way costs a fresh 64 KiB Buffer per read (an
 * allocation, and garbage behind it) and one read syscall per 64 KiB; reading into the process's
 * shared 256 KiB buffer (`sharedReadBuffer`, the one sealed stream sockets read into) takes up to
 * four times as much per syscall, and the one copy of what was read into a buffer of its exact
 * size is cheaper than the allocation and the syscalls it saves.
 *
 * Node takes `onread` only in `new net.Socket()` / `net.connect()`; a server's accepted sockets
 * cannot ask for it. What the option sets is three fields of the socket (`kBuffer`, `kBufferCb`,
 * `kBufferGen`: symbols the constructor creates on every socket) and the handle's
 * `useUserBuffer`; `ownReads` sets the same on a socket that is not reading yet. Written against
 * Node 20 and 22 (lib/net.js, onStreamRead in stream_base_commons.js); where the fields are not
 * found it changes nothing and says so, and the caller reads the ordinary way.
 */
import type net from 'node:net';
import { turnReadBound } from './read-turn.js';
import { sharedReadBuffer } from './shared-read-buffer.js';

/** What Node keeps on a socket for `onread` (found by their symbols' descriptions). */
interface OnreadFields {
  buffer: symbol;
  callback: symbol;
  generator: symbol;
}

let fields: OnreadFields | null | undefined;

function onreadFields(socket: net.Socket): OnreadFields | null {
  if (fields !== undefined) return fields;
  const byName = new Map<string, symbol>();
  for (const s of Object.getOwnPropertySymbols(socket)) if (s.description) byName.set(s.description, s);
  const buffer = byName.get('kBuffer');
  const callback = byName.get('kBufferCb');
  const generator = byName.get('kBufferGen');
  fields = buffer && callback && generator ? { buffer, callback, generator } : null;
  return fields;
}

interface UserBufferHandle {
  useUserBuffer?: (buffer: Uint8Array) => void;
}

/**
 * Makes `socket`'s reads land in `buffer` and go to `onRead` as a view of the bytes read, which
 * the callee must be done with (or copy) before it returns; `onRead` returning false stops reading
 * until `socket.resume()`. EOF and errors come as usual ('end', 'error'); 'data' no longer comes.
 * With `next`, the buffer the following read lands in is what `next` returns, asked after each
 * `onRead` (Node's `onread.buffer` as a function): a callee that keeps a view of a buffer of its
 * own, instead of copying it, hands out another one for the next read.
 * Only for a socket with nothing buffered that has not ended, and whose reads no one else takes
 * (no 'data' listener, no pipe). Returns false, changing nothing, when that is not so or Node does
 * not have the fields this relies on.
 * With `turnBytes`, the socket also stops reading once one readiness delivered that many bytes, and
 * reads again at the end of the turn (turnReadBound in read-turn.ts); 0 never does.
 */
export function ownReads(
  socket: net.Socket,
  buffer: Buffer,
  onRead: (view: Buffer) => boolean,
  next?: () => Buffer,
  turnBytes = 0,
): boolean {
  const handle = (socket as unknown as { _handle?: UserBufferHandle | null })._handle;
  if (!handle || typeof handle.useUserBuffer !== 'function') return false;
  if (socket.readableLength > 0 || socket.readableEnded || socket.destroyed || socket.listenerCount('data') > 0) return false;
  const f = onreadFields(socket);
  if (!f) return false;
  const s = socket as unknown as Record<symbol, unknown>;
  // Exactly what net.Socket's constructor sets for `onread: { buffer, callback }`.
  if (s[f.buffer] !== null || s[f.generator] !== null) return false;
  s[f.buffer] = buffer;
  if (turnBytes > 0) {
    const more = turnReadBound(socket, turnBytes);
    s[f.callback] = (n: number, buf: Buffer): boolean => onRead(buf.subarray(0, n)) && more(n, buf.length);
  } else s[f.callback] = (n: number, buf: Buffer): boolean => onRead(buf.subarray(0, n));
  if (next) s[f.generator] = next;
  handle.useUserBuffer(buffer);
  return true;
}

/**
 * How long (ms) a socket that streamed may hold a read buffer of its own without reading into it
 * before it gives it back (ownReadsToKeep): a streaming socket reads again within milliseconds.
 */
export const DEFAULT_IDLE_READ_BUFFER_MS = 1000;

/**
 * How many times one socket gives its read buffer back (each leaves a small native object on the
 * socket until it closes, see setReadBuffer); after that its reads are all copied out of the
 * shared buffer.
 */
export const MAX_READ_BUFFER_RELEASES = 64;

/**
 * Owned reads for a callee that keeps what it is given (queues it for writing, or until the peer
 * acknowledges it), as a buffer of its own. A read that filled at least half of a buffer of the
 * socket's own goes as it is, a view of it, and the next read gets a fresh `bytes` one: a socket
 * that streams is read into fresh buffers and never copied, at most half of each unused. Any
 * other read (into the process's shared buffer, or a small one) is copied into a buffer of its
 * size, and the next read goes to the shared buffer. A socket that holds a fresh buffer and has
 * not read for `idleMs` (quiet after a burst, or held back) gives it back and reads into the
 * shared buffer again (0: never): a quiet socket holds no buffer of its own.
 * `onChunk` returning false stops reading until `socket.resume()`. `released`, asked after
 * `onChunk` with the buffer a read went to as it is, says that nothing refers to it any more (the
 * callee wrote it out, or copied what it keeps): then the next read goes to the same buffer
 * instead of a fresh one. `turnBytes` bounds what one readiness delivers (see `ownReads`).
 * Returns false, changing nothing, where `ownReads` would.
 */
export function ownReadsToKeep(
  socket: net.Socket,
  bytes: number,
  onChunk: (chunk: Buffer) => boolean,
  idleMs = DEFAULT_IDLE_READ_BUFFER_MS,
  released?: (buffer: ArrayBufferLike) => boolean,
  turnBytes = 0,
): boolean {
  const shared = sharedReadBuffer(bytes);
  let next = shared;
  // A check every idleMs while the socket holds a fresh buffer: no read since the last one, and
  // the buffer goes back.
  let readSinceCheck = false;
  let releases = 0;
  let idleTimer: NodeJS.Timeout | undefined;
  const checkIdle = (): void => {
    idleTimer = undefined;
    if (next === shared || socket.destroyed) return;
    if (readSinceCheck) {
      readSinceCheck = false;
      idleTimer = setTimeout(checkIdle, idleMs).unref();
    } else if (setReadBuffer(socket, shared)) {
      next = shared;
      releases++;
    }
  };
  const owned = ownReads(
    socket,
    shared,
    (view) => {
      readSinceCheck = true;
      const landedIn = next; // the buffer this read went to (next is what the previous read handed out)
      const large = view.length * 2 >= bytes && releases < MAX_READ_BUFFER_RELEASES;
      let chunk = view;
      if (!large || landedIn === shared) {
        chunk = Buffer.allocUnsafe(view.length);
        view.copy(chunk);
      }
      const more = onChunk(chunk);
      // A buffer of the socket's own that the callee says nothing refers to any more (what it
      // queued was written at once) takes the next read again: no allocation, and memory that is
      // already mapped and in cache.
      next = !large ? shared : chunk === view && released?.(landedIn.buffer) ? landedIn : Buffer.allocUnsafeSlow(bytes);
      if (large && idleTimer === undefined && idleMs > 0) {
        readSinceCheck = false;
        idleTimer = setTimeout(checkIdle, idleMs).unref();
      }
      return more;
    },
    () => next,
    turnBytes,
  );
  if (owned) socket.once('close', () => clearTimeout(idleTimer));
  return owned;
}

/**
 * Points the reads of a socket whose reads `ownReads` took over at `buffer`, from the next read
 * on: for a socket gone quiet that holds a buffer of its own (`next` handed it out), which it
 * would otherwise keep until its next read, maybe for good. Node has no way to drop the native
 * listener `useUserBuffer` pushes, so each call leaves one small object (tens of bytes) on the
 * socket until it closes: call it rarely, and a bounded number of times per socket. Not from
 * inside `onRead` or `next`. Returns false, changing nothing, when the socket is gone or its
 * reads are not owned.
 */
export function setReadBuffer(socket: net.Socket, buffer: Buffer): boolean {
  const handle = (socket as unknown as { _handle?: UserBufferHandle | null })._handle;
  if (!handle || typeof handle.useUserBuffer !== 'function' || socket.destroyed || !fields) return false;
  const s = socket as unknown as Record<symbol, unknown>;
  if (!(s[fields.buffer] instanceof Uint8Array)) return false;
  s[fields.buffer] = buffer;
  handle.useUserBuffer(buffer);
  return true;
}
