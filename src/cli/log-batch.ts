/**
 * Batches log lines in front of an asynchronous destination: a line waits at most
 * `LOG_BATCH_MS` for the lines after it, and all of them leave in one write. Each asynchronous
 * write is a round trip through libuv's thread pool (a worker thread woken, then the loop woken
 * back), which cost a proxy that logs one line per connection more than the rest of the
 * connection's close. What waits is written on 'beforeExit' and, synchronously, on 'exit' (a
 * process.exit(), a signal the CLI handles, an uncaught error).
 */

import fs from 'node:fs';

/** How long a log line may wait in memory for the lines after it, ms. */
export const LOG_BATCH_MS = 50;
/** Bytes of waiting lines that are written at once, without waiting for `LOG_BATCH_MS`. */
export const LOG_BATCH_BYTES = 8192;

/** The destination's part a batch needs (pino's SonicBoom destination has it). */
export interface LineDestination {
  write(data: string): boolean;
  flushSync(): void;
}

/** How many times a write on 'exit' is retried while the pipe is full (1 ms apart) before the rest is given up. */
const EXIT_WRITE_RETRIES = 1000;

/** Writes `data` to `fd` before returning, waiting out a full pipe (EAGAIN) for a bounded time. */
function writeAllSync(fd: number, data: string): void {
  let rest = Buffer.from(data);
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let retries = 0; rest.length > 0 && retries < EXIT_WRITE_RETRIES; ) {
    try {
      rest = rest.subarray(fs.writeSync(fd, rest));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') return;
      retries++;
      Atomics.wait(pause, 0, 0, 1);
    }
  }
}

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

/** A pino stream: collects lines and hands them to `out` in batches (see the module comment). */
export class LineBatch {
  private lines: string[] = [];
  private bytes = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly out: LineDestination,
    /** `out`'s file descriptor, written to directly on 'exit'. */
    private readonly fd: number,
    private readonly delayMs = LOG_BATCH_MS,
    private readonly maxBytes = LOG_BATCH_BYTES,
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
    if (this.bytes >= this.maxBytes) this.writeOut(false);
    // unref'd: a process with nothing else to do exits, and the lines go out on the way.
    else if (this.timer === undefined) this.timer = setTimeout(() => this.writeOut(false), this.delayMs).unref();
    return true;
  }

  /** pino's `logger.flush()`: hands what waits to the destination now. */
  flush(cb?: (err?: Error) => void): void {
    this.writeOut(false);
    cb?.();
  }

  /**
   * Hands what waits to the destination now. With `sync` (on 'exit', where nothing asynchronous
   * runs any more) writes the destination's own queue out, then the batch, before returning.
   */
  writeOut(sync: boolean): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const data = this.lines.join('');
    this.lines = [];
    this.bytes = 0;
    if (!sync) {
      if (data !== '') this.out.write(data);
      return;
    }
    try {
      this.out.flushSync();
    } catch {
      // a destination that cannot write any more (closed, broken pipe) loses its queue either way
    }
    if (data !== '') writeAllSync(this.fd, data);
  }
}
