/**
 * Record-layer benchmark. One run measures, over a TCP transport pair on 127.0.0.1 (sender in
 * this process, receiver in a child process, as service and device are) with 64 KiB
 * messages and backpressure: plaintext (no record layer) against sealed inline, sealed on 1
 * worker thread and on 2 worker threads, each bounded in time, with throughput, the ratio to
 * plaintext and CPU seconds per GiB (process.cpuUsage of both processes, which counts every thread). Then a
 * tinybench micro-benchmark of seal/open of one 1, 16 and 64 KiB record. The receiver takes
 * messages split across socket reads as pieces (`onMessageParts`), as the mux does. Node flags
 * (e.g. `--cpu-prof`) are passed on to the receiver child, so both ends can be profiled.
 *
 * Run: `npm run build && node dist/bench/standalone/crypto-bench.js [seconds-per-case]`.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Bench } from 'tinybench';
import { TcpTransport } from '../../src/transport/tcp.js';
import type { Transport } from '../../src/transport/transport.js';
import { secureInitiator, secureResponder } from '../../src/crypto/secure-transport.js';
import { generateStaticKeyPair } from '../../src/crypto/keys.js';
import { acceptAnyKey } from '../../src/crypto/trust.js';
import { closeCryptoPools } from '../../src/crypto/worker-pool.js';
import { RECORD_SUITES, SUITE_KEY_SIZE, openBody, recordNonce, sealParts, type RecordSuite } from '../../src/crypto/aead.js';
import { DEFAULT_RECORD_SUITES } from '../../src/crypto/constants.js';
import { encodeRecordHeader } from '../../src/crypto/record-format.js';
import type { SecureTransportOptions } from '../../src/crypto/options.js';
import { spawnChild, stderrOf } from '../procs.js';
import { selfCpuSeconds } from '../sampler.js';
import { markdownTable, type ColumnAlign } from '../markdown-table.js';

export interface ThroughputResult {
  name: string;
  bytes: number;
  seconds: number;
  /** MB/s (10^6 bytes per second). */
  mbPerSec: number;
  /** Throughput relative to plaintext in the same run. */
  ratio: number;
  /** CPU seconds (user + system, all threads) per GiB moved. */
  cpuSecPerGiB: number;
}

export interface MicroResult {
  name: string;
  /** Mean microseconds per call. */
  usPerOp: number;
  mbPerSec: number;
}

export interface CryptoBenchResult {
  throughput: ThroughputResult[];
  micro: MicroResult[];
}

export interface CryptoBenchOptions {
  /** Time per throughput case. Default 5 s. */
  secondsPerCase?: number;
  /** Record suite of the throughput cases. Default the first of DEFAULT_RECORD_SUITES. */
  suite?: RecordSuite;
  /** Aborting stops the case that runs (kills its receiver) and rejects. */
  signal?: AbortSignal;
  /** tinybench time per micro task, ms. Default 300. */
  microTimeMs?: number;
}

/** Receiver settings passed to the child process. */
interface ReceiverSpec {
  port: number;
  secure?: Partial<SecureTransportOptions>;
  /** Bytes between the receiver's acknowledgements. */
  ackEveryBytes: number;
}

const END_MARKER = Buffer.from([0xee]);
/** Length of an acknowledgement: the receiver's byte count so far, u64 big-endian. */
const ACK_BYTES = 8;

/**
 * Bytes per message in the throughput cases: fixed at 64 KiB (a full mux DATA frame), not tied to
 * MAX_RECORD_PLAINTEXT, so figures stay comparable when the record limit changes.
 */
export const BENCH_MESSAGE_BYTES = 64 * 1024;
/**
 * Most bytes the sender has out beyond the receiver's last acknowledgement: the mux's largest
 * channel window (MuxConfig.maxWindow), which bounds what a peer may send through the tunnel.
 * Without it the pair has no flow control but TCP's, and a receiver whose records wait for its
 * workers fails with ERR_PROTOCOL_FLOOD (maxOpenBacklog) while the sender waits for a count that
 * never comes: the hang of the crypto module in a full run.
 */
export const PAIR_WINDOW_BYTES = 16 * 1024 * 1024;
/** The receiver acknowledges every this many bytes (a sixteenth of the window, as the mux grants). */
export const PAIR_ACK_EVERY_BYTES = 1024 * 1024;
/** How long the receiver child gets to exit once the sender closed, before SIGKILL. */
export const RECEIVER_EXIT_WAIT_MS = 5_000;

/**
 * The receiving end, run in a child process (as the device side would be): connects, completes
 * the responder handshake when sealed, counts bytes and acknowledges them every `ackEveryBytes`,
 * and on the 1-byte end marker replies with `{ bytes, cpu }` (its own CPU seconds, all threads).
 * A transport that ends with an error is reported on stderr and in the exit code.
 */
async function runReceiver(spec: ReceiverSpec): Promise<void> {
  const socket = net.connect(spec.port, '127.0.0.1');
  await new Promise<void>((r, j) => socket.once('connect', r).once('error', j));
  let t: Transport = new TcpTransport(socket);
  if (spec.secure)
    t = await secureResponder(t, { staticKeys: generateStaticKeyPair(), verifyPeer: acceptAnyKey, prologue: 'bench', ...spec.secure });
  const cpu0 = selfCpuSeconds();
  let bytes = 0;
  let acked = 0;
  const count = (n: number): void => {
    bytes += n;
    if (bytes - acked < spec.ackEveryBytes) return;
    acked = bytes;
    const ack = Buffer.alloc(ACK_BYTES);
    ack.writeBigUInt64BE(BigInt(bytes));
    t.send([ack]);
  };
  const closeError = await new Promise<Error | undefined>((resolve) => {
    t.attach({
      onMessage: (m) => {
        if (m.length === 1 && m[0] === END_MARKER[0]) {
          t.send([Buffer.from(JSON.stringify({ bytes, cpu: selfCpuSeconds() - cpu0 }))]);
          return;
        }
        count(m.length);
      },
      // Like the mux, take a message that spans socket reads as pieces (no join), in both cases.
      onMessageParts: (parts) => {
        let n = 0;
        for (const p of parts) n += p.length;
        count(n);
      },
      onDrain: () => {},
      onClose: (err) => resolve(err),
    });
  });
  await closeCryptoPools();
  if (closeError !== undefined) {
    process.stderr.write(`crypto-bench receiver: ${closeError.message}\n`);
    process.exitCode = 1;
  }
}

/** Options of one throughput case beyond its record-layer settings. */
export interface PairOptions {
  /** Sender's window beyond the last acknowledgement. Default PAIR_WINDOW_BYTES. */
  readonly windowBytes?: number;
  /** Receiver's acknowledgement step. Default PAIR_ACK_EVERY_BYTES. */
  readonly ackEveryBytes?: number;
  /** Aborting kills the receiver and rejects (the bench's time bound on the module). */
  readonly signal?: AbortSignal;
}

/**
 * Sends 64 KiB messages for `seconds` from this process to a receiver child process over TCP,
 * with backpressure and a window of acknowledged bytes (as the mux keeps), then the end marker;
 * the run ends when the receiver's count comes back. Rejects, naming the case, when the receiver
 * closes or exits first.
 */
export async function throughputCase(
  name: string,
  seconds: number,
  secure?: Partial<SecureTransportOptions>,
  pair: PairOptions = {},
): Promise<Omit<ThroughputResult, 'ratio'>> {
  const windowBytes = pair.windowBytes ?? PAIR_WINDOW_BYTES;
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const spec: ReceiverSpec = { port, ackEveryBytes: pair.ackEveryBytes ?? PAIR_ACK_EVERY_BYTES, ...(secure ? { secure } : {}) };
  const receiver = spawnChild(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--receiver', JSON.stringify(spec)], {
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  const child = receiver.proc;
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((r) =>
    child.once('exit', (code, sig) => {
      exitCode = code ?? (sig === null ? null : -1);
      r();
    }),
  );
  // Every wait below ends on one of these: its own event, the receiver's close or exit, or abort.
  let failure: Error | undefined;
  let wake: (() => void) | undefined;
  const poke = (): void => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const fail = (why: string): void => {
    failure ??= new Error(`crypto case "${name}": ${why}`);
    poke();
  };
  const next = (): Promise<void> => new Promise<void>((r) => (wake = r));
  const check = (): void => {
    if (failure !== undefined) throw failure;
  };
  void exited.then(() => fail(`receiver exited (${exitCode}) before its count came back`));
  const onAbort = (): void => {
    child.kill('SIGKILL');
    fail(`aborted (${errorMessage(pair.signal?.reason)})`);
  };
  pair.signal?.addEventListener('abort', onAbort, { once: true });
  let tx: Transport | undefined;
  let socket: net.Socket | undefined;
  try {
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    void accepted.then((s) => {
      socket = s;
      poke();
    });
    while (socket === undefined) {
      check();
      await next();
    }
    tx = new TcpTransport(socket);
    if (secure) {
      const handshake = secureInitiator(tx, {
        staticKeys: generateStaticKeyPair(),
        verifyPeer: acceptAnyKey,
        prologue: 'bench',
        ...secure,
      });
      let done: Transport | undefined;
      handshake.then(
        (t) => {
          done = t;
          poke();
        },
        (err: unknown) => fail(`handshake failed: ${errorMessage(err)}`),
      );
      while (done === undefined) {
        check();
        await next();
      }
      tx = done;
    }
    const sender = tx;
    const payload = randomBytes(BENCH_MESSAGE_BYTES);
    let sent = 0;
    let acked = 0;
    let blocked = false;
    let reply: Buffer | undefined;
    sender.attach({
      onMessage: (m) => {
        if (m.length === ACK_BYTES) acked = Number(m.readBigUInt64BE(0));
        else reply = m;
        poke();
      },
      onDrain: () => {
        blocked = false;
        poke();
      },
      onClose: (err) => fail(`the receiver's connection closed${err === undefined ? '' : ` (${err.message})`}`),
    });
    const cpu0 = selfCpuSeconds();
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    while (performance.now() < end) {
      check();
      if (blocked || sent - acked >= windowBytes) {
        await next();
        continue;
      }
      // A burst per turn, as the mux flushes its queue, then yield to I/O.
      for (let i = 0; i < 16 && sent - acked < windowBytes; i++) {
        sent += payload.length;
        if (!sender.send([payload])) {
          blocked = true;
          break;
        }
      }
      await new Promise<void>((r) => setImmediate(r));
    }
    sender.send([END_MARKER]);
    while (reply === undefined) {
      check();
      await next();
    }
    const got = JSON.parse(reply.toString()) as { bytes: number; cpu: number };
    const elapsed = (performance.now() - t0) / 1000;
    const cpu = selfCpuSeconds() - cpu0 + got.cpu;
    return { name, bytes: got.bytes, seconds: elapsed, mbPerSec: got.bytes / elapsed / 1e6, cpuSecPerGiB: cpu / (got.bytes / 2 ** 30) };
  } finally {
    pair.signal?.removeEventListener('abort', onAbort);
    tx?.close();
    await closeCryptoPools();
    // The receiver ends when its connection does; one that does not is killed, not waited for.
    const timer = setTimeout(() => child.kill('SIGKILL'), RECEIVER_EXIT_WAIT_MS);
    await exited;
    clearTimeout(timer);
    socket?.destroy();
    // The receiver's own account of why it ended (e.g. ERR_PROTOCOL_FLOOD) goes with the error.
    const said = stderrOf(receiver).trim().split('\n').pop();
    if (failure !== undefined && said !== undefined && said !== '') failure.message += `; receiver: ${said}`;
    await new Promise<void>((r) => server.close(() => r()));
  }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function micro(suite: RecordSuite, timeMs: number): Promise<MicroResult[]> {
  const bench = new Bench({ time: timeMs, warmupTime: 50 });
  const key = randomBytes(SUITE_KEY_SIZE[suite]);
  const iv = randomBytes(12);
  const sizes = [1024, 16 * 1024, 64 * 1024];
  for (const size of sizes) {
    const plain = randomBytes(size);
    const header = encodeRecordHeader(0, 1);
    const nonce = recordNonce(iv, 1);
    const sealed = Buffer.concat(sealParts(suite, key, nonce, header, [plain]));
    bench.add(`seal ${size / 1024} KiB`, () => {
      sealParts(suite, key, recordNonce(iv, 1), header, [plain]);
    });
    bench.add(`open ${size / 1024} KiB`, () => {
      if (!openBody(suite, key, recordNonce(iv, 1), header, sealed)) throw new Error('open failed');
    });
  }
  await bench.run();
  return bench.tasks.map((t) => {
    const r = t.result as { period?: number };
    const period = r.period ?? NaN;
    const size = Number(t.name.split(' ')[1]) * 1024;
    return { name: `${suite} ${t.name}`, usPerOp: period * 1000, mbPerSec: size / (period / 1000) / 1e6 };
  });
}

/** Runs the whole benchmark; returns the figures (also printed by the standalone entry). */
export async function runCryptoBench(options: CryptoBenchOptions = {}): Promise<CryptoBenchResult> {
  const seconds = options.secondsPerCase ?? 5;
  const suite = options.suite ?? DEFAULT_RECORD_SUITES[0]!;
  const cases: Array<[string, Partial<SecureTransportOptions> | undefined]> = [
    ['plaintext (no record layer)', undefined],
    [`sealed ${suite} inline`, { suites: [suite], crypto: 'inline' }],
    [`sealed ${suite} workers x1`, { suites: [suite], crypto: 'workers', workerThreads: 1 }],
    [`sealed ${suite} workers x2`, { suites: [suite], crypto: 'workers', workerThreads: 2 }],
  ];
  const raw: Array<Omit<ThroughputResult, 'ratio'>> = [];
  for (const [name, secure] of cases)
    raw.push(await throughputCase(name, seconds, secure, options.signal === undefined ? {} : { signal: options.signal }));
  const base = raw[0]!.mbPerSec;
  const throughput = raw.map((r) => ({ ...r, ratio: r.mbPerSec / base }));
  const microResults: MicroResult[] = [];
  for (const s of RECORD_SUITES) microResults.push(...(await micro(s, options.microTimeMs ?? 300)));
  return { throughput, micro: microResults };
}

/** Markdown tables of a result, for RESULTS.md and the console. */
export function formatCryptoBench(r: CryptoBenchResult): string {
  const figures: ColumnAlign[] = ['left', 'right', 'right', 'right'];
  const throughput = markdownTable(
    ['case (TCP pair, 64 KiB messages)', 'MB/s', 'x plaintext', 'CPU s / GiB'],
    r.throughput.map((t) => [t.name, t.mbPerSec.toFixed(0), t.ratio.toFixed(2), t.cpuSecPerGiB.toFixed(2)]),
    figures,
  );
  const micro = markdownTable(
    ['micro (one record)', 'us/op', 'MB/s'],
    r.micro.map((m) => [m.name, m.usPerOp.toFixed(1), m.mbPerSec.toFixed(0)]),
    figures,
  );
  return `${throughput}\n\n${micro}`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href && process.argv[2] === '--receiver') {
  runReceiver(JSON.parse(process.argv[3]!) as ReceiverSpec).catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
} else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const seconds = Number(process.argv[2] ?? 5);
  runCryptoBench({ secondsPerCase: seconds }).then(
    (r) => console.log(formatCryptoBench(r)),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
