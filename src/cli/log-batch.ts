/**
 * Batches log lines in front of stderr: a line waits at most `LOG_BATCH_MS` for the lines after
 * it, and all of them leave in one write. A proxy that logs one line per connection then pays one
 * system call per batch, not one per line.
 *
 * Batches are written by the main thread itself (fs.writeSync), never handed to libuv's thread
 * pool: a write waiting there when the process exits (process.exit(), a signal the CLI handles,
 * an uncaught error) was lost, or landed after the lines logged later, which the exit wrote
 * directly. A pipe that cannot take a batch now (EAGAIN on a non-blocking descriptor) keeps the
 * rest in memory, in order, and is tried again `LOG_RETRY_MS` later; what waits is written on
 * 'beforeExit' and, waiting out a full pipe for a bounded time, on 'exit'.
 *
 * That needs a descriptor that says EAGAIN rather than blocking. Node makes a pipe or socket on
 * stderr non-blocking, but a terminal it reopens for process.stderr and leaves fd 2 blocking: a
 * terminal whose output is stopped (Ctrl-S, a paused pane, a stalled ssh session) would then hold
 * the whole proxy. `nonBlockingStderr()` gives a descriptor of its own for the terminal, opened
 * non-blocking as libuv opens its own.
 */

import fs from 'node:fs';
import tty from 'node:tty';

/** How long a log line may wait in memory for the lines after it, ms. */
export const LOG_BATCH_MS = 50;
/** Bytes of waiting lines that are written at once, without waiting for `LOG_BATCH_MS`. */
export const LOG_BATCH_BYTES = 8192;
/** How soon a write refused by a full pipe is tried again, ms. */
export const LOG_RETRY_MS = 10;

/** Writes what it can of `data` to `fd`; returns how many bytes it wrote (0 when the fd would block). */
export type LineWriter = (fd: number, data: Buffer) => number;

const writeSync: LineWriter = (fd, data) => fs.writeSync(fd, data);

/**
 * A descriptor for stderr that never blocks: fd 2 itself unless it is a terminal, and for a
 * terminal a new non-blocking descriptor of the same terminal (fd 2 when it cannot be opened, as
 * where /proc is missing). Not for files: a file reopened this way would be written from its start.
 */
export function nonBlockingStderr(): number {
  if (!tty.isatty(2)) return 2;
  try {
    return fs.openSync('/proc/self/fd/2', fs.constants.O_WRONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
  } catch {
    return 2;
  }
}

/** How many times a write on 'exit' is retried while the pipe is full (1 ms apart) before the rest is given up. */
const EXIT_WRITE_RETRIES = 1000;

const open = new Set<LineBatch>();
let hooked = false;

/** Writes every batch that waits; `sync` on 'exit', where nothing asynchronous runs any more. */
function flushAll(sync: boolean): void {
  for (const batch of open) batch.writeOut(sync);
}

/**
 * Writes every line that waits now, synchronously: for a line written straight to stderr next
 * (a command's failure line), which must come after the lines logged before it.
 */
export function writeWaitingLines(): void {
  flushAll(true);
}

/** A pino stream: collects lines and writes them to `fd` in batches (see the module comment). */
export class LineBatch {
  private lines: string[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Bytes a full pipe refused, written before anything logged after them. */
  private unwritten: Buffer | undefined;
  /** Set once writing failed for good (closed descriptor, broken pipe): lines are dropped. */
  private broken = false;

  constructor(
    private readonly fd: number,
    private readonly delayMs = LOG_BATCH_MS,
    private readonly maxBytes = LOG_BATCH_BYTES,
    private readonly write_: LineWriter = writeSync,
  ) {
    open.add(this);
    if (!hooked) {
      hooked = true;
      process.on('beforeExit', () => flushAll(false));
      process.on('exit', () => flushAll(true));
    }
  }

  write(line: string): boolean {
    this.lines.push(line);
    this.bytes += line.length;
    if (this.bytes >= this.maxBytes && this.unwritten === undefined) this.writeOut(false);
    else this.armTimer(this.delayMs);
    return true;
  }

  /** pino's `logger.flush()`: writes what waits now (what a full pipe refuses waits on). */
  flush(cb?: (err?: Error) => void): void {
    this.writeOut(false);
    cb?.();
  }

  /**
   * Writes what waits now. Without `sync`, what a full pipe refuses waits for a later try; with
   * `sync` (on 'exit', where nothing asynchronous runs any more) a full pipe is waited out, 1 ms
   * at a time, `EXIT_WRITE_RETRIES` times at most.
   */
  writeOut(sync: boolean): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const fresh = this.lines.length > 0 ? Buffer.from(this.lines.join('')) : undefined;
    this.lines = [];
    this.bytes = 0;
    let rest = this.unwritten === undefined ? fresh : fresh === undefined ? this.unwritten : Buffer.concat([this.unwritten, fresh]);
    this.unwritten = undefined;
    if (rest === undefined || this.broken) return;
    const pause = sync ? new Int32Array(new SharedArrayBuffer(4)) : undefined;
    for (let retries = 0; rest.length > 0; ) {
      let n: number;
      try {
        n = this.write_(this.fd, rest);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') {
          // a descriptor that cannot take lines any more (closed, broken pipe) loses them either way
          this.broken = true;
          return;
        }
        n = 0;
      }
      rest = rest.subarray(n);
      if (n > 0 || rest.length === 0) continue;
      if (pause === undefined) {
        this.unwritten = rest;
        this.armTimer(LOG_RETRY_MS);
        return;
      }
      if (++retries >= EXIT_WRITE_RETRIES) return;
      Atomics.wait(pause, 0, 0, 1);
    }
  }

  private armTimer(ms: number): void {
    // unref'd: a process with nothing else to do exits, and the lines go out on the way.
    if (this.timer === undefined) this.timer = setTimeout(() => this.writeOut(false), ms).unref();
  }
}
