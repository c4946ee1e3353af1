// Client-side socket helpers shared by the scenarios: connect, bulk send to the sink, echo round trips.
import net from 'node:net';
import { BULK_CHUNK_BYTES } from '../config.js';
import { SINK_DONE_BYTE, SINK_HEADER_BYTES, SINK_START_BYTE } from '../targets.js';

export async function connect(port: number, timeoutMs = 10_000): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, noDelay: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`connect to ${port} timed out`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      s.removeListener('error', reject);
      resolve(s);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

export interface BulkResult {
  readonly bytes: number;
  readonly seconds: number;
  /** Seconds from the sink's START reply to its DONE reply: the receive time at the sink. */
  readonly receiveSeconds: number;
  /** False when the deadline (or stop signal) ended the transfer before the sink confirmed it. */
  readonly complete: boolean;
}

const CHUNK = Buffer.alloc(BULK_CHUNK_BYTES, 0x5a);

/**
 * Sends `bytes` to the sink through `port` and waits for its done byte. Bounded by `timeoutMs` and
 * by `stop` (resolves early, complete=false, with the bytes written so far). `counter.written`, if
 * given, grows as bytes are handed to the socket (for progress lines).
 */
export async function bulkSend(
  port: number,
  bytes: number,
  timeoutMs: number,
  stop?: AbortSignal,
  counter?: { written: number },
): Promise<BulkResult> {
  const sock = await connect(port);
  const start = performance.now();
  return new Promise<BulkResult>((resolve) => {
    let written = 0;
    let done = false;
    let startedAt = NaN;
    const finish = (complete: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stop?.removeEventListener('abort', onAbort);
      sock.destroy();
      const now = performance.now();
      resolve({
        bytes: complete ? bytes : written,
        seconds: (now - start) / 1000,
        receiveSeconds: Number.isNaN(startedAt) ? NaN : (now - startedAt) / 1000,
        complete,
      });
    };
    const onAbort = (): void => finish(false);
    const timer = setTimeout(() => finish(false), timeoutMs);
    stop?.addEventListener('abort', onAbort);
    sock.on('error', () => finish(false));
    sock.on('close', () => finish(false));
    sock.on('data', (d: Buffer) => {
      if (Number.isNaN(startedAt) && d.includes(SINK_START_BYTE)) startedAt = performance.now();
      if (d.includes(SINK_DONE_BYTE)) finish(true);
    });
    const header = Buffer.alloc(SINK_HEADER_BYTES);
    header.writeBigUInt64BE(BigInt(bytes));
    sock.write(header);
    const pump = (): void => {
      while (!done && written < bytes) {
        const n = Math.min(CHUNK.length, bytes - written);
        written += n;
        if (counter !== undefined) counter.written += n;
        if (!sock.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
          sock.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
}

/** Sequential fixed-size round trips on one echo connection. */
export class EchoClient {
  private pending: { need: number; got: number; resolve: () => void } | undefined;

  private constructor(private readonly sock: net.Socket) {
    sock.on('data', (d: Buffer) => {
      const p = this.pending;
      if (p === undefined) return;
      p.got += d.length;
      if (p.got >= p.need) {
        this.pending = undefined;
        p.resolve();
      }
    });
  }

  static async open(port: number): Promise<EchoClient> {
    return new EchoClient(await connect(port));
  }

  /** One round trip of `payload`; resolves with the time in microseconds. Rejects after timeoutMs. */
  async roundTrip(payload: Buffer, timeoutMs: number): Promise<number> {
    const t0 = performance.now();
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('echo round trip timed out')), timeoutMs);
      this.pending = {
        need: payload.length,
        got: 0,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.sock.write(payload);
    });
    return (performance.now() - t0) * 1000;
  }

  close(): void {
    this.sock.destroy();
  }
}

/** Opens a new connection to the echo port, sends one byte, resolves with ms until it returns. */
export async function timeToFirstByte(port: number, timeoutMs: number): Promise<number> {
  const t0 = performance.now();
  return new Promise<number>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, noDelay: true });
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('first byte timed out'));
    }, timeoutMs);
    s.once('connect', () => s.write(Buffer.of(0x42)));
    s.once('data', () => {
      clearTimeout(timer);
      const ms = performance.now() - t0;
      s.destroy();
      resolve(ms);
    });
    s.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}
