/**
 * Bulk-throughput bench of the mux against raw TCP and @chainsafe/libp2p-yamux v8, side by side
 * in one run over TCP on 127.0.0.1 (issue 2). The sender runs here; the receiver is a forked
 * peer process (mux-peer.ts) that sinks each stream and replies "done <bytes>" after the
 * sender's end, so a case is timed from the first write until every reply has arrived.
 *
 * Cases: 1 and 8 streams for each implementation (raw TCP uses one socket per stream). Each
 * case is bounded by a byte and a time budget and repeated; the median counts. Results go to
 * bench/results/mux.json; `runMuxBench` and `renderMuxSection` let `npm run bench` include it.
 *
 *   npm run bench:mux [-- --quick] [-- --only mux,yamux] [-- --streams 1] [-- --profile]
 */
import './mux-polyfill.js';
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { yamux } from '@chainsafe/libp2p-yamux';
import { Command } from 'commander';
import type { Stream, StreamMessageEvent } from '@libp2p/interface';
import { Session } from '../../src/mux/index.js';
import { TcpTransport } from '../../src/transport/tcp.js';
import { median as medianOrUndefined } from '../results.js';
import { selfCpuSeconds } from '../sampler.js';
import { markdownTable, type ColumnAlign } from '../markdown-table.js';
import { SocketMessageStream } from './yamux-adapter.js';
import { MUX_IMPLS, parseReply, type MuxImpl, type PeerCommand, type PeerReport } from './mux-common.js';

/** Byte budget per case (all streams together) in a full run. */
export const MUX_BENCH_MAX_BYTES = 1024 * 1024 * 1024;
/** Time budget per case in a full run. */
export const MUX_BENCH_MAX_MS = 5_000;
/** Time budget per case with `quick`. */
export const MUX_BENCH_QUICK_MS = 1_000;
/**
 * Paired rounds: every case once per round, mux and yamux back to back (their order swapped every
 * other round, so neither always runs on the machine the other left behind); the goals judge the
 * median of the per-round ratios mux / yamux.
 */
export const MUX_BENCH_REPEATS = 5;
/** Size of each application write. */
export const MUX_BENCH_CHUNK = 64 * 1024;
/** Stream counts measured. */
export const MUX_BENCH_STREAMS: readonly number[] = [1, 8];
/** A case that has not finished this long after its time budget is a failure, not a hang. */
const CASE_GRACE_MS = 30_000;
/** Goals from issue 2: ours / yamux. */
export const MUX_GOALS = { single: 1.2, eight: 1.0 } as const;

const MB = 1e6;

export interface MuxBenchOptions {
  quick?: boolean;
  repeats?: number;
  maxBytes?: number;
  maxMs?: number;
  impls?: readonly MuxImpl[];
  streams?: readonly number[];
  /** Run the peer with --cpu-prof, writing into this directory. */
  peerProfileDir?: string;
  /** Where the JSON goes; null to skip writing. */
  outFile?: string | null;
  /** Aborting kills the peer process, which fails the case that runs (the bench's module bound). */
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export interface MuxRun {
  bytes: number;
  seconds: number;
  mbps: number;
  /** CPU time (user+system) per MB moved, in ms: sender process and peer process. Robust to a busy machine, unlike MB/s. */
  senderCpuMsPerMB: number;
  peerCpuMsPerMB: number;
}

export interface MuxCaseResult {
  impl: MuxImpl;
  streams: number;
  runs: MuxRun[];
  /** Median MB/s over the runs (MB = 10^6 bytes). */
  medianMBps: number;
  /** Median CPU ms per MB, sender and peer. */
  medianSenderCpuMsPerMB: number;
  medianPeerCpuMsPerMB: number;
}

export interface MuxGoal {
  name: string;
  target: number;
  /** Median of the per-round ratios. */
  ratio: number | null;
  met: boolean | null;
  /** Rounds in which the ratio alone met the target, and rounds measured. */
  held: number;
  rounds: number;
  min: number | null;
  max: number | null;
}

export interface MuxBenchResult {
  date: string;
  node: string;
  cpus: number;
  cpuModel: string;
  quick: boolean;
  repeats: number;
  maxBytes: number;
  maxMs: number;
  chunkBytes: number;
  cases: MuxCaseResult[];
  /**
   * Per stream count: ours / yamux as the median of the per-round ratios (with those ratios, in
   * round order), ours / raw and yamux / raw from the medians.
   */
  ratios: Array<{
    streams: number;
    oursOverYamux: number | null;
    oursOverYamuxRounds: number[];
    oursOverRaw: number | null;
    yamuxOverRaw: number | null;
  }>;
  goals: MuxGoal[];
}

interface Budget {
  bytesPerStream: number;
  deadline: number;
}

// ---- peer process ----

class Peer {
  private readonly child: ChildProcess;
  private readonly waiting: Array<(report: PeerReport) => void> = [];
  private failure: Error | undefined;

  constructor(profileDir?: string) {
    const script = fileURLToPath(new URL('./mux-peer.js', import.meta.url));
    const execArgv = ['--enable-source-maps'];
    if (profileDir) execArgv.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`);
    this.child = fork(script, [], { execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.child.on('message', (report: PeerReport) => {
      if (report.type === 'error') {
        this.failure = new Error(`peer failed: ${report.message}`);
        return;
      }
      this.waiting.shift()?.(report);
    });
    this.child.on('exit', (code) => {
      if (code !== 0) this.failure ??= new Error(`peer exited with code ${String(code)}`);
    });
  }

  get error(): Error | undefined {
    return this.failure;
  }

  private request(command: PeerCommand): Promise<PeerReport> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(this.failure ?? new Error(`peer did not answer ${command.type}`)), 10_000);
      this.waiting.push((report) => {
        clearTimeout(timer);
        resolve(report);
      });
      this.child.send(command);
    });
  }

  async listen(impl: MuxImpl): Promise<number> {
    const report = await this.request({ type: 'listen', impl });
    if (report.type !== 'listening') throw new Error(`peer answered ${report.type} to listen`);
    return report.port;
  }

  /** Stops the case's server; resolves with the peer's CPU microseconds since `listen`. */
  async stop(): Promise<number> {
    const report = await this.request({ type: 'stop' });
    return report.type === 'stopped' ? report.cpuMicros : 0;
  }

  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }

  async exit(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = once(this.child, 'exit');
    this.child.send({ type: 'exit' } satisfies PeerCommand);
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
    if (this.child.exitCode === null) this.child.kill();
  }
}

// ---- sender helpers ----

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.off('error', reject);
      socket.setNoDelay(true);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Writes `chunk` until the budget is spent, honouring backpressure, then ends. */
async function pumpWritable(w: Writable, chunk: Buffer, budget: Budget): Promise<number> {
  let sent = 0;
  while (sent < budget.bytesPerStream && performance.now() < budget.deadline) {
    sent += chunk.length;
    if (!w.write(chunk)) await once(w, 'drain');
  }
  w.end();
  return sent;
}

/** Reads a Readable to its end and parses the peer's reply. */
async function readReply(r: Readable): Promise<number> {
  const parts: Buffer[] = [];
  for await (const part of r) parts.push(part as Buffer);
  return parseReply(Buffer.concat(parts).toString());
}

async function pumpYamux(stream: Stream, chunk: Buffer, budget: Budget): Promise<number> {
  let sent = 0;
  while (sent < budget.bytesPerStream && performance.now() < budget.deadline) {
    sent += chunk.length;
    if (!stream.send(chunk)) await stream.onDrain();
  }
  await stream.close();
  return sent;
}

function yamuxReply(stream: Stream): Promise<number> {
  return new Promise((resolve, reject) => {
    const parts: Uint8Array[] = [];
    stream.addEventListener('message', (evt: StreamMessageEvent) => {
      parts.push(evt.data.subarray());
    });
    stream.addEventListener('remoteCloseWrite', () => {
      try {
        resolve(parseReply(Buffer.concat(parts).toString()));
      } catch (err) {
        reject(err);
      }
    });
    stream.addEventListener('close', (evt) => {
      if (evt.error) reject(evt.error);
    });
  });
}

/** Sends on every stream and resolves when all replies are in; returns [sent, confirmed] bytes. */
type CaseRunner = (
  port: number,
  streams: number,
  chunk: Buffer,
  budget: Budget,
) => Promise<{ sent: number; confirmed: number; cleanup: () => void }>;

const runners: Record<MuxImpl, CaseRunner> = {
  async raw(port, streams, chunk, budget) {
    const sockets = await Promise.all(Array.from({ length: streams }, () => connect(port)));
    const results = await Promise.all(
      sockets.map(async (socket) => {
        const reply = readReply(socket);
        const sent = await pumpWritable(socket, chunk, budget);
        return { sent, confirmed: await reply };
      }),
    );
    return { ...sum(results), cleanup: () => sockets.forEach((s) => s.destroy()) };
  },

  async mux(port, streams, chunk, budget) {
    const socket = await connect(port);
    const session = new Session(new TcpTransport(socket), { role: 'initiator' });
    const results = await Promise.all(
      Array.from({ length: streams }, async (_, i) => {
        const channel = session.openChannel({ host: '127.0.0.1', port: 9, service: `bench-${i}` });
        const reply = readReply(channel);
        const sent = await pumpWritable(channel, chunk, budget);
        return { sent, confirmed: await reply };
      }),
    );
    return { ...sum(results), cleanup: () => session.close() };
  },

  async yamux(port, streams, chunk, budget) {
    const socket = await connect(port);
    const muxer = yamux()().createStreamMuxer(new SocketMessageStream(socket, 'outbound'));
    const results = await Promise.all(
      Array.from({ length: streams }, async () => {
        const stream = await muxer.createStream();
        const reply = yamuxReply(stream);
        const sent = await pumpYamux(stream, chunk, budget);
        return { sent, confirmed: await reply };
      }),
    );
    return {
      ...sum(results),
      cleanup: () => {
        muxer.abort(new Error('bench case over'));
        socket.destroy();
      },
    };
  },
};

function sum(results: Array<{ sent: number; confirmed: number }>): { sent: number; confirmed: number } {
  return results.reduce((a, r) => ({ sent: a.sent + r.sent, confirmed: a.confirmed + r.confirmed }), { sent: 0, confirmed: 0 });
}

async function runCase(peer: Peer, impl: MuxImpl, streams: number, chunk: Buffer, maxBytes: number, maxMs: number): Promise<MuxRun> {
  const port = await peer.listen(impl);
  const cpuStart = selfCpuSeconds();
  const start = performance.now();
  const budget: Budget = { bytesPerStream: Math.ceil(maxBytes / streams), deadline: start + maxMs };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(peer.error ?? new Error(`${impl} x${streams} did not finish within ${maxMs + CASE_GRACE_MS} ms`)),
      maxMs + CASE_GRACE_MS,
    );
  });
  let stopped = false;
  try {
    const { sent, confirmed, cleanup } = await Promise.race([runners[impl](port, streams, chunk, budget), timeout]);
    const seconds = (performance.now() - start) / 1000;
    const cpuSeconds = selfCpuSeconds() - cpuStart;
    cleanup();
    if (confirmed !== sent) throw new Error(`${impl} x${streams}: peer confirmed ${confirmed} of ${sent} bytes`);
    stopped = true;
    const peerCpuMicros = await peer.stop();
    const mb = sent / MB;
    return {
      bytes: sent,
      seconds,
      mbps: mb / seconds,
      senderCpuMsPerMB: (cpuSeconds * 1000) / mb,
      peerCpuMsPerMB: peerCpuMicros / 1000 / mb,
    };
  } finally {
    clearTimeout(timer);
    if (!stopped) await peer.stop();
  }
}

/** Median of the runs (NaN when there are none). */
function median(values: readonly number[]): number {
  return medianOrUndefined(values) ?? NaN;
}

function ratio(a: number | undefined, b: number | undefined): number | null {
  return a === undefined || b === undefined || b === 0 ? null : a / b;
}

/**
 * The cases of round `rep` (0-based): every case once, grouped by stream count, with the order of
 * the implementations reversed every other round (raw mux yamux, then yamux mux raw), so mux and
 * yamux always run back to back and each goes first in half the rounds.
 */
export function roundOrder<T extends { impl: MuxImpl; streams: number }>(cases: readonly T[], rep: number): T[] {
  const out: T[] = [];
  for (const streams of [...new Set(cases.map((c) => c.streams))]) {
    const group = cases.filter((c) => c.streams === streams);
    out.push(...(rep % 2 === 0 ? group : [...group].reverse()));
  }
  return out;
}

/** mux / yamux per round at a stream count: run k of each ran back to back in round k. */
export function roundRatios(cases: readonly MuxCaseResult[], streams: number): number[] {
  const mux = cases.find((c) => c.impl === 'mux' && c.streams === streams)?.runs ?? [];
  const yamux = cases.find((c) => c.impl === 'yamux' && c.streams === streams)?.runs ?? [];
  const out: number[] = [];
  for (let k = 0; k < Math.min(mux.length, yamux.length); k++) {
    const y = yamux[k]?.mbps ?? 0;
    if (y > 0) out.push((mux[k]?.mbps ?? 0) / y);
  }
  return out;
}

/** Runs every case in paired rounds (see roundOrder), so drift hits all implementations alike. */
export async function runMuxBench(opts: MuxBenchOptions = {}): Promise<MuxBenchResult> {
  const quick = opts.quick ?? false;
  const repeats = opts.repeats ?? MUX_BENCH_REPEATS;
  const maxBytes = opts.maxBytes ?? MUX_BENCH_MAX_BYTES;
  const maxMs = opts.maxMs ?? (quick ? MUX_BENCH_QUICK_MS : MUX_BENCH_MAX_MS);
  const impls = opts.impls ?? MUX_IMPLS;
  const streamCounts = opts.streams ?? MUX_BENCH_STREAMS;
  const log = opts.log ?? ((line: string) => console.log(line));
  const chunk = Buffer.alloc(MUX_BENCH_CHUNK, 0x5a);

  const cases: MuxCaseResult[] = [];
  for (const streams of streamCounts)
    for (const impl of impls) cases.push({ impl, streams, runs: [], medianMBps: 0, medianSenderCpuMsPerMB: 0, medianPeerCpuMsPerMB: 0 });

  const peer = new Peer(opts.peerProfileDir);
  const onAbort = (): void => peer.kill();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    // One short warm-up per implementation so JIT and socket buffers settle before timing.
    for (const impl of impls) await runCase(peer, impl, 1, chunk, maxBytes, Math.min(300, maxMs));
    for (let rep = 0; rep < repeats; rep++) {
      for (const c of roundOrder(cases, rep)) {
        const run = await runCase(peer, c.impl, c.streams, chunk, maxBytes, maxMs);
        c.runs.push(run);
        log(
          `  run ${rep + 1}/${repeats} ${c.impl.padEnd(5)} x${c.streams}: ${run.mbps.toFixed(0).padStart(6)} MB/s (${(run.bytes / MB).toFixed(0)} MB in ${run.seconds.toFixed(2)} s; CPU ms/MB sender ${run.senderCpuMsPerMB.toFixed(2)}, peer ${run.peerCpuMsPerMB.toFixed(2)})`,
        );
      }
    }
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    await peer.exit();
  }
  for (const c of cases) {
    c.medianMBps = median(c.runs.map((r) => r.mbps));
    c.medianSenderCpuMsPerMB = median(c.runs.map((r) => r.senderCpuMsPerMB));
    c.medianPeerCpuMsPerMB = median(c.runs.map((r) => r.peerCpuMsPerMB));
  }

  const get = (impl: MuxImpl, streams: number): number | undefined =>
    cases.find((c) => c.impl === impl && c.streams === streams)?.medianMBps;
  const ratios = streamCounts.map((streams) => {
    const rounds = roundRatios(cases, streams);
    return {
      streams,
      oursOverYamux: rounds.length > 0 ? median(rounds) : null,
      oursOverYamuxRounds: rounds,
      oursOverRaw: ratio(get('mux', streams), get('raw', streams)),
      yamuxOverRaw: ratio(get('yamux', streams), get('raw', streams)),
    };
  });
  const goal = (name: string, streams: number, target: number): MuxGoal => {
    const rounds = roundRatios(cases, streams);
    const r = rounds.length > 0 ? median(rounds) : null;
    return {
      name,
      target,
      ratio: r,
      met: r === null ? null : r >= target,
      held: rounds.filter((x) => x >= target).length,
      rounds: rounds.length,
      min: rounds.length > 0 ? Math.min(...rounds) : null,
      max: rounds.length > 0 ? Math.max(...rounds) : null,
    };
  };
  const result: MuxBenchResult = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    quick,
    repeats,
    maxBytes,
    maxMs,
    chunkBytes: chunk.length,
    cases,
    ratios,
    goals: [
      goal(`1 channel >= ${MUX_GOALS.single}x yamux 1 stream`, 1, MUX_GOALS.single),
      goal(`8 channels >= ${MUX_GOALS.eight}x yamux 8 streams`, 8, MUX_GOALS.eight),
    ],
  };
  const outFile = opts.outFile === undefined ? fileURLToPath(new URL('../../../bench/results/mux.json', import.meta.url)) : opts.outFile;
  if (outFile) {
    await mkdir(path.dirname(outFile), { recursive: true });
    await writeFile(outFile, `${JSON.stringify(result, null, 2)}\n`);
  }
  return result;
}

// ---- rendering ----

const IMPL_LABEL: Record<MuxImpl, string> = { raw: 'raw TCP', mux: 'devstreams mux', yamux: 'yamux v8' };

function fmtRatio(r: number | null): string {
  return r === null ? 'n/a' : `${r.toFixed(2)}x`;
}

/** The range of per-round ratios: `1.05-1.31x`. */
function ratioRange(rounds: readonly number[]): string {
  return rounds.length === 0 ? 'n/a' : `${Math.min(...rounds).toFixed(2)}-${Math.max(...rounds).toFixed(2)}x`;
}

function fmtMBps(result: MuxBenchResult, impl: MuxImpl, streams: number): string {
  const c = result.cases.find((x) => x.impl === impl && x.streams === streams);
  return c ? c.medianMBps.toFixed(0) : 'n/a';
}

function fmtCpu(result: MuxBenchResult, impl: MuxImpl, streams: number): string {
  const c = result.cases.find((x) => x.impl === impl && x.streams === streams);
  return c ? `${c.medianSenderCpuMsPerMB.toFixed(2)}+${c.medianPeerCpuMsPerMB.toFixed(2)}` : 'n/a';
}

/** Plain-text table for the terminal. */
export function renderMuxTable(result: MuxBenchResult): string {
  const streams = [...new Set(result.cases.map((c) => c.streams))];
  const impls = [...new Set(result.cases.map((c) => c.impl))];
  const lines: string[] = [];
  lines.push(
    `mux throughput, MB/s (10^6 B/s), median of ${result.repeats}; ${result.maxMs} ms or ${result.maxBytes / 2 ** 20} MiB per case; node ${result.node}, ${result.cpus} CPUs`,
  );
  lines.push(['case'.padEnd(16), ...streams.map((s) => `${s} stream${s > 1 ? 's' : ''}`.padStart(11))].join(''));
  for (const impl of impls)
    lines.push([IMPL_LABEL[impl].padEnd(16), ...streams.map((s) => fmtMBps(result, impl, s).padStart(11))].join(''));
  lines.push(['ours / yamux'.padEnd(16), ...result.ratios.map((r) => fmtRatio(r.oursOverYamux).padStart(11))].join(''));
  lines.push(['  rounds'.padEnd(16), ...result.ratios.map((r) => ratioRange(r.oursOverYamuxRounds).padStart(11))].join(''));
  lines.push(['ours / raw'.padEnd(16), ...result.ratios.map((r) => fmtRatio(r.oursOverRaw).padStart(11))].join(''));
  lines.push(['yamux / raw'.padEnd(16), ...result.ratios.map((r) => fmtRatio(r.yamuxOverRaw).padStart(11))].join(''));
  lines.push('CPU ms per MB (sender + peer), median:');
  for (const impl of impls)
    lines.push([`  ${IMPL_LABEL[impl]}`.padEnd(16), ...streams.map((s) => fmtCpu(result, impl, s).padStart(11))].join(''));
  for (const g of result.goals)
    lines.push(
      `goal ${g.name}: ${g.met === null ? 'not measured' : `median ${fmtRatio(g.ratio)} -> ${g.met ? 'MET' : 'NOT MET'}, ${g.held} of ${g.rounds} rounds`}`,
    );
  return lines.join('\n');
}

/** Markdown section for RESULTS.md. */
export function renderMuxSection(result: MuxBenchResult): string {
  const streams = [...new Set(result.cases.map((c) => c.streams))];
  const impls = [...new Set(result.cases.map((c) => c.impl))];
  const out: string[] = [];
  out.push('## Mux bulk throughput (TCP, 127.0.0.1)');
  out.push('');
  out.push(
    `Sender in the bench process, receiver in a child process; each case moves ${result.chunkBytes / 1024} KiB writes for ${result.maxMs} ms or ${result.maxBytes / 2 ** 20} MiB (whichever comes first) and is timed until every stream's "done" reply arrives. ${result.repeats} paired rounds: every case once per round, mux and yamux back to back (which goes first alternates by round); MB/s figures are medians over rounds, ours / yamux is the median of the per-round ratios. MB/s = 10^6 bytes/s. ${result.date}, node ${result.node}, ${result.cpus} x ${result.cpuModel}${result.quick ? ', quick mode' : ''}. Command: \`npm run bench:mux\`.`,
  );
  out.push('');
  const align: ColumnAlign[] = ['left', ...streams.map((): ColumnAlign => 'right')];
  out.push(
    markdownTable(
      ['implementation', ...streams.map((s) => `${s} stream${s > 1 ? 's' : ''} (MB/s)`)],
      [
        ...impls.map((impl) => [IMPL_LABEL[impl], ...streams.map((s) => fmtMBps(result, impl, s))]),
        ['ours / yamux, median of per-round ratios', ...result.ratios.map((r) => fmtRatio(r.oursOverYamux))],
        ['ours / yamux, rounds min-max', ...result.ratios.map((r) => ratioRange(r.oursOverYamuxRounds))],
        ['ours / raw TCP', ...result.ratios.map((r) => fmtRatio(r.oursOverRaw))],
      ],
      align,
    ),
  );
  out.push('');
  out.push('CPU cost, ms of CPU per MB moved (sender + receiver), median; less sensitive to a busy machine than MB/s:');
  out.push('');
  out.push(
    markdownTable(
      ['implementation', ...streams.map((s) => `${s} stream${s > 1 ? 's' : ''}`)],
      impls.map((impl) => [IMPL_LABEL[impl], ...streams.map((s) => fmtCpu(result, impl, s))]),
      align,
    ),
  );
  out.push('');
  for (const g of result.goals)
    out.push(
      `- Goal: ${g.name}: ${g.met === null ? 'not measured' : `median ${fmtRatio(g.ratio)} (rounds ${ratioRange(result.ratios.find((r) => g.name.startsWith(`${r.streams} `))?.oursOverYamuxRounds ?? [])}), **${g.met ? 'met' : 'not met'}**, ${g.held} of ${g.rounds} rounds`}`,
    );
  out.push('');
  return out.join('\n');
}

// ---- CLI ----

/** The standalone command line, with commander as in run.ts (`--help` lists the options). */
function parseArgs(argv: string[]): MuxBenchOptions {
  const list = (v: string): string[] => v.split(',');
  const o = new Command('bench:mux')
    .description('Mux throughput: devstreams mux against yamux and raw TCP, in paired rounds')
    .option('--quick', 'fewer rounds, smaller budget')
    .option('--only <impls>', `implementations to run, comma-separated (${MUX_IMPLS.join(', ')})`, list)
    .option('--streams <counts>', 'stream counts, comma-separated', list)
    .option('--repeats <n>', 'paired rounds', Number)
    .option('--ms <n>', 'time budget per case in ms', Number)
    .option('--profile [dir]', 'write --cpu-prof profiles of the peer into dir')
    .option('--no-write', 'do not write bench/results/mux.json')
    .parse(argv, { from: 'user' })
    .opts<{
      quick?: boolean;
      only?: string[];
      streams?: string[];
      repeats?: number;
      ms?: number;
      profile?: string | true;
      write: boolean;
    }>();
  const opts: MuxBenchOptions = {};
  if (o.quick === true) opts.quick = true;
  if (o.only !== undefined) opts.impls = o.only.filter((x): x is MuxImpl => (MUX_IMPLS as readonly string[]).includes(x));
  if (o.streams !== undefined) opts.streams = o.streams.map(Number).filter((n) => Number.isInteger(n) && n > 0);
  if (o.repeats !== undefined) opts.repeats = o.repeats;
  if (o.ms !== undefined) opts.maxMs = o.ms;
  if (o.profile !== undefined) opts.peerProfileDir = path.resolve(o.profile === true ? 'bench/results/profiles' : o.profile);
  if (!o.write) opts.outFile = null;
  return opts;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const opts = parseArgs(process.argv.slice(2));
  runMuxBench(opts).then(
    (result) => {
      console.log('');
      console.log(renderMuxTable(result));
      if (opts.outFile !== null) console.log('\nwrote bench/results/mux.json');
    },
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
