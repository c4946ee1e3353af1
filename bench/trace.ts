// Report module `trace`: "Where the round trip goes". Starts the tunnel on loopback with
// DEVSTREAMS_TRACE set (src/util/trace.ts: each process stamps points on the monotonic clock
// every process shares), sends idle 64-byte round trips a few ms apart, stamps the bench client's
// own write and read on the same clock, and splits each round trip into the hops between
// consecutive points: client -> service proxy socket read -> mux -> seal -> resume layer ->
// stream socket write -> hub read -> hub write -> device proxy read -> open -> mux -> target
// write -> echo -> and the same way back. The rows are means over round trips, so they add up to
// the mean traced round trip; the check line compares that sum with the client's own timing.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { RTT_PAYLOAD_BYTES } from './config.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { iperf3Load, iperf3Unavailable, startIperf3Server } from './iperf3.js';
import { devstreamsPath } from './paths/devstreams.js';
import type { RunningPath } from './paths/types.js';
import { findPlacement, type Placement } from './placements.js';
import { benchScript, spawnNodeReady, type Child } from './procs.js';
import { registerModule } from './report/registry.js';
import { metric } from './results.js';
import type { TargetPorts } from './targets.js';
import { TRACE_ENV, TRACE_FLUSH_MS } from '../src/util/trace.js';

const runFile = promisify(execFile);

/** Round trips thrown away first (JIT, windows), traced round trips kept, pause between them. */
export const TRACE_BUDGET = { quick: { warmup: 300, samples: 50, loaded: 50 }, full: { warmup: 2000, samples: 500, loaded: 200 } } as const;
/** Pause between interactive round trips under bulk (a typist), and the bulk's head start (ms). */
export const TRACE_LOADED_GAP_MS = 1;
export const TRACE_BULK_LEAD_MS = 300;
/** How often the kernel's socket queues of the stream are read with `ss` under bulk (ms). */
export const TRACE_SS_INTERVAL_MS = 50;
/** Longest the loaded loop may take (ms). */
export const TRACE_LOADED_TIMEOUT_MS = 15_000;
/**
 * Round trips kept for the means: those up to this quantile of their own loop. The slowest are
 * scheduling stalls (a process not run for ms on a shared machine) that would swamp a mean; the
 * traced and untraced loops are trimmed alike.
 */
export const TRACE_KEEP_QUANTILE = 0.9;
/** The breakdown must add up to the measured round trip within this fraction. */
export const TRACE_SUM_TOLERANCE = 0.1;

type Role = 'client' | 'service-proxy' | 'hub' | 'device-proxy';
interface Hop {
  readonly role: Role;
  readonly point: string;
}

/** The points of one round trip, in order. */
const SEQUENCE: readonly Hop[] = [
  { role: 'client', point: 'send' },
  { role: 'service-proxy', point: 'sock.read' },
  { role: 'service-proxy', point: 'seal' },
  { role: 'service-proxy', point: 'sealed' },
  { role: 'service-proxy', point: 'ws.send' },
  { role: 'hub', point: 'hub.read.service' },
  { role: 'hub', point: 'hub.write.device' },
  { role: 'device-proxy', point: 'ws.read' },
  { role: 'device-proxy', point: 'open' },
  { role: 'device-proxy', point: 'opened' },
  { role: 'device-proxy', point: 'sock.write' },
  { role: 'device-proxy', point: 'sock.read' },
  { role: 'device-proxy', point: 'seal' },
  { role: 'device-proxy', point: 'sealed' },
  { role: 'device-proxy', point: 'ws.send' },
  { role: 'hub', point: 'hub.read.device' },
  { role: 'hub', point: 'hub.write.service' },
  { role: 'service-proxy', point: 'ws.read' },
  { role: 'service-proxy', point: 'open' },
  { role: 'service-proxy', point: 'opened' },
  { role: 'service-proxy', point: 'sock.write' },
  { role: 'client', point: 'recv' },
];

/** What happens between point i and point i+1, and where. */
const HOPS: ReadonlyArray<readonly [string, string]> = [
  ['kernel', 'bench client write -> service proxy socket read (loopback TCP, wake-up)'],
  ['service proxy', 'socket read -> mux: channel write, DATA frame'],
  ['service proxy', 'seal (AES-GCM record)'],
  ['service proxy', 'resume layer (replay buffer) -> stream socket write'],
  ['kernel', 'service proxy stream write -> hub read'],
  ['hub', 'read -> write (frame splice)'],
  ['kernel', 'hub write -> device proxy stream read'],
  ['device proxy', 'stream read -> websocket unframe, resume layer -> open'],
  ['device proxy', 'open (AES-GCM record)'],
  ['device proxy', 'mux: frame decode, channel delivery -> target socket write'],
  ['kernel + echo', 'device proxy target write -> echo server -> device proxy target read'],
  ['device proxy', 'target socket read -> mux: channel write, DATA frame'],
  ['device proxy', 'seal (AES-GCM record)'],
  ['device proxy', 'resume layer (replay buffer) -> stream socket write'],
  ['kernel', 'device proxy stream write -> hub read'],
  ['hub', 'read -> write (frame splice)'],
  ['kernel', 'hub write -> service proxy stream read'],
  ['service proxy', 'stream read -> websocket unframe, resume layer -> open'],
  ['service proxy', 'open (AES-GCM record)'],
  ['service proxy', 'mux: frame decode, channel delivery -> client socket write'],
  ['kernel', 'service proxy client write -> bench client read (loopback TCP, wake-up)'],
];

export interface TraceHopRow {
  readonly where: string;
  readonly what: string;
  readonly meanUs: number;
  readonly p50Us: number;
}

export interface TraceResult {
  readonly rows: TraceHopRow[];
  /** Round trips whose every point was found. */
  readonly matched: number;
  readonly samples: number;
  /** Mean of the client's own round-trip timing over the matched round trips (us). */
  readonly measuredMeanUs: number;
  readonly measuredP50Us: number;
  /** The same loop through a tunnel started without tracing: p50 and mean (us). */
  readonly untracedP50Us: number;
  readonly untracedMeanUs: number;
  readonly loaded?: LoadedResult;
}

/** The interactive round trip under iperf3 bulk: its segments, and the stream's kernel queues. */
export interface LoadedResult {
  readonly rows: TraceHopRow[];
  readonly matched: number;
  readonly samples: number;
  readonly measuredMeanUs: number;
  /** Mean bytes in the kernel queues (Send-Q + Recv-Q) of the stream's four sockets, from `ss`. */
  readonly kernelQueuedBytes: number | undefined;
  readonly ssSamples: number;
  readonly bulkMBps: number | undefined;
}

interface LoadedRaw {
  readonly windows: Array<[bigint, bigint]>;
  readonly clientPort: number;
  readonly svcPort: number;
  readonly queued: number[];
  readonly bulkMBps: number | undefined;
}

/** Send-Q + Recv-Q of every established socket to or from the hub's port, from `ss -tnH`. */
async function hubQueues(hubPort: number): Promise<number | undefined> {
  try {
    const { stdout } = await runFile('ss', ['-tnH', 'state', 'established', `( sport = :${hubPort} or dport = :${hubPort} )`]);
    let total = 0;
    for (const line of stdout.split('\n')) {
      const [recvQ, sendQ] = line.trim().split(/\s+/);
      if (recvQ !== undefined && sendQ !== undefined && /^\d+$/.test(recvQ) && /^\d+$/.test(sendQ)) total += Number(recvQ) + Number(sendQ);
    }
    return total;
  } catch {
    return undefined;
  }
}

async function underBulk(
  running: RunningPath,
  client: TraceClient,
  hubPort: number | undefined,
  samples: number,
  progress: (d: string) => void,
): Promise<LoadedRaw> {
  progress(`${samples} traced round trips under iperf3 bulk`);
  const load = iperf3Load(running.ports.iperf, Math.ceil(TRACE_LOADED_TIMEOUT_MS / 1000) + 5);
  const queued: number[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling && hubPort !== undefined) {
      const q = await hubQueues(hubPort);
      if (q !== undefined) queued.push(q);
      await new Promise((r) => setTimeout(r, TRACE_SS_INTERVAL_MS));
    }
  })();
  try {
    await new Promise((r) => setTimeout(r, TRACE_BULK_LEAD_MS));
    const windows: Array<[bigint, bigint]> = [];
    const deadline = Date.now() + TRACE_LOADED_TIMEOUT_MS;
    for (let i = 0; i < samples && Date.now() < deadline; i++) {
      windows.push(await client.roundTrip());
      await new Promise((r) => setTimeout(r, TRACE_LOADED_GAP_MS));
    }
    sampling = false;
    await sampler;
    const rate = await load.finish();
    return { windows, clientPort: client.localPort, svcPort: running.ports.echo, queued, bulkMBps: rate?.MBps };
  } finally {
    sampling = false;
    await load.child.stop();
  }
}

/** The interactive connection's own points (tagged with its ports) in each loaded round trip. */
function analyseLoaded(events: readonly Event[], raw: LoadedRaw, echoPort: number): LoadedResult {
  const svcTag = `${raw.svcPort}:${raw.clientPort}`;
  const isSvc = (e: Event, point: string): boolean => e.role === 'service-proxy' && e.point === point && e.tag === svcTag;
  const isDev = (e: Event, point: string): boolean =>
    e.role === 'device-proxy' && e.point === point && e.tag?.endsWith(`:${echoPort}`) === true;
  const steps: Array<(e: Event) => boolean> = [
    (e) => isSvc(e, 'sock.read'),
    (e) => isDev(e, 'sock.write'),
    (e) => isDev(e, 'sock.read'),
    (e) => isSvc(e, 'sock.write'),
  ];
  const per: number[][] = LOADED_HOPS.map(() => []);
  const rtts: number[] = [];
  let from = 0;
  for (const [t0, t1] of raw.windows) {
    while (from < events.length && (events[from] as Event).t < t0) from++;
    const times: bigint[] = [t0];
    let i = from;
    for (const step of steps) {
      while (i < events.length && (events[i] as Event).t <= t1 && !step(events[i] as Event)) i++;
      if (i >= events.length || (events[i] as Event).t > t1) break;
      times.push((events[i] as Event).t);
      i++;
    }
    if (times.length !== steps.length + 1) continue;
    times.push(t1);
    for (let h = 0; h < LOADED_HOPS.length; h++) (per[h] as number[]).push(Number((times[h + 1] as bigint) - (times[h] as bigint)) / 1000);
    rtts.push(Number(t1 - t0) / 1000);
  }
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  return {
    rows: LOADED_HOPS.map(([where, what], h) => ({ where, what, meanUs: mean(per[h] as number[]), p50Us: median(per[h] as number[]) })),
    matched: rtts.length,
    samples: raw.windows.length,
    measuredMeanUs: mean(rtts),
    kernelQueuedBytes: raw.queued.length > 0 ? mean(raw.queued) : undefined,
    ssSamples: raw.queued.length,
    bulkMBps: raw.bulkMBps,
  };
}

const LOADED_HOPS: ReadonlyArray<readonly [string, string]> = [
  ['kernel + event loop', "bench client write -> service proxy socket read (its own TCP; the proxy's event loop is busy with the bulk)"],
  [
    'stream, service -> device',
    'service proxy socket read -> device proxy target write: mux and seal queues, websocket buffer, kernel queues of both legs, hub splice queue, open',
  ],
  ['kernel + echo', 'device proxy target write -> echo server -> device proxy target read'],
  ['stream, device -> service', "device proxy target read -> service proxy socket write (against the bulk's ACKs only)"],
  ['kernel', 'service proxy socket write -> bench client read'],
];
// Rows 1, 3 and 5 run from one process's socket write to another's read: the loopback TCP path
// and the reader's event-loop latency, which grows when the reader is busy moving bulk.

interface Event {
  readonly t: bigint;
  readonly role: Role;
  readonly point: string;
  /** `localPort:remotePort` of the socket, on the proxies' socket points. */
  readonly tag?: string;
}

function readTraces(dir: string): Event[] {
  const out: Event[] = [];
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.trace'))) {
    const lines = fs.readFileSync(path.join(dir, f), 'utf8').split('\n');
    const cmd = (lines[0] ?? '').replace(/^# /, '').trim();
    const role: Role | undefined =
      cmd === 'hub' ? 'hub' : cmd === 'device-proxy' ? 'device-proxy' : cmd === 'service-proxy' ? 'service-proxy' : undefined;
    if (role === undefined) continue;
    for (const l of lines.slice(1)) {
      if (l === '' || l.startsWith('#')) continue;
      const [t, point, tag] = l.split(' ');
      if (t === undefined || point === undefined) continue;
      out.push({ t: BigInt(t), role, point, ...(tag !== undefined ? { tag } : {}) });
    }
  }
  return out.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
}

/** The first event of each expected point, in order, inside [t0, t1]; undefined if one is missing. */
function matchSequence(events: readonly Event[], from: number, t0: bigint, t1: bigint): bigint[] | undefined {
  const times: bigint[] = [t0];
  let i = from;
  let last = t0;
  for (const hop of SEQUENCE.slice(1, -1)) {
    while (
      i < events.length &&
      (events[i] as Event).t <= t1 &&
      !((events[i] as Event).t >= last && (events[i] as Event).role === hop.role && (events[i] as Event).point === hop.point)
    )
      i++;
    if (i >= events.length || (events[i] as Event).t > t1) return undefined;
    last = (events[i] as Event).t;
    times.push(last);
    i++;
  }
  times.push(t1);
  return times;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? NaN;
/** Nearest-rank quantile (q in 0..1). */
const quantile = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.max(0, Math.ceil(q * xs.length) - 1)] ?? NaN;

interface TraceClient {
  readonly localPort: number;
  roundTrip(): Promise<[bigint, bigint]>;
  close(): void;
}

async function echoClient(port: number): Promise<TraceClient> {
  const sock = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, noDelay: true }, () => resolve(s));
    s.once('error', reject);
  });
  const payload = Buffer.alloc(RTT_PAYLOAD_BYTES, 0x61);
  let waiting: { got: number; resolve: (t: bigint) => void } | undefined;
  sock.on('data', (d: Buffer) => {
    const t = process.hrtime.bigint();
    if (waiting === undefined) return;
    waiting.got += d.length;
    if (waiting.got >= payload.length) {
      const w = waiting;
      waiting = undefined;
      w.resolve(t);
    }
  });
  return {
    localPort: sock.localPort ?? 0,
    roundTrip: async () => {
      const done = new Promise<bigint>((resolve) => {
        waiting = { got: 0, resolve };
      });
      const t0 = process.hrtime.bigint();
      sock.write(payload);
      return [t0, await done];
    },
    close: () => sock.destroy(),
  };
}

/** Back-to-back round trips through a tunnel; with `env` tracing it, without it the same loop untraced. */
async function loop<T>(
  targets: TargetPorts,
  tmp: string,
  progress: (d: string) => void,
  warmup: number,
  samples: number,
  env: Record<string, string>,
  then: (running: RunningPath, client: TraceClient, hubPort: number | undefined) => Promise<T>,
): Promise<{ windows: Array<[bigint, bigint]>; then: T }> {
  let hubPort: number | undefined;
  const log = (l: string): void => {
    hubPort ??= Number(/hub :(\d+)/.exec(l)?.[1]) || undefined;
    progress(l);
  };
  const running = await devstreamsPath.start({ targets, placement: findPlacement('loopback') as Placement, tmpDir: tmp, log, env });
  try {
    const client = await echoClient(running.ports.echo);
    try {
      for (let i = 0; i < warmup; i++) await client.roundTrip();
      const windows: Array<[bigint, bigint]> = [];
      for (let i = 0; i < samples; i++) windows.push(await client.roundTrip());
      // biome-ignore lint/suspicious/noThenProperty: a measured value, not a function, so never a thenable
      return { windows, then: await then(running, client, hubPort) };
    } finally {
      client.close();
    }
  } finally {
    await running.stop();
  }
}

async function collectTrace(quick: boolean, progress: (d: string) => void): Promise<TraceResult> {
  const budget = quick ? TRACE_BUDGET.quick : TRACE_BUDGET.full;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'devstreams-trace-'));
  const traceDir = path.join(tmp, 'trace');
  fs.mkdirSync(traceDir);
  const children: Child[] = [];
  try {
    const t = await spawnNodeReady<{ ports: Partial<TargetPorts> }>(benchScript('procs/targets-main.js'), ['sink,echo,http']);
    children.push(t.child);
    let iperfPort: number | undefined;
    if ((await iperf3Unavailable()) === undefined) {
      const srv = await startIperf3Server();
      children.push(srv.child);
      iperfPort = srv.port;
    }
    const targets = { ...t.ready.ports, iperf: iperfPort ?? 1 } as TargetPorts;
    progress(`${budget.samples} round trips untraced, then traced`);
    const { windows: plain } = await loop(targets, tmp, progress, budget.warmup, budget.samples, {}, async () => undefined);
    const traced = await loop(
      targets,
      tmp,
      progress,
      budget.warmup,
      budget.samples,
      { [TRACE_ENV]: traceDir },
      async (running, client, hubPort) =>
        iperfPort === undefined ? undefined : underBulk(running, client, hubPort, budget.loaded, progress),
    );
    const windows = traced.windows;
    await new Promise((r) => setTimeout(r, 3 * TRACE_FLUSH_MS));
    const events = readTraces(traceDir);
    const perHop: number[][] = HOPS.map(() => []);
    const rtts: number[] = [];
    const cut = quantile(
      windows.map(([a, b]) => Number(b - a) / 1000),
      TRACE_KEEP_QUANTILE,
    );
    let from = 0;
    for (const [t0, t1] of windows) {
      while (from < events.length && (events[from] as Event).t < t0) from++;
      if (Number(t1 - t0) / 1000 > cut) continue;
      const times = matchSequence(events, from, t0, t1);
      if (times === undefined) continue;
      for (let h = 0; h < HOPS.length; h++) (perHop[h] as number[]).push(Number((times[h + 1] as bigint) - (times[h] as bigint)) / 1000);
      rtts.push(Number(t1 - t0) / 1000);
    }
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const allPlain = plain.map(([a, b]) => Number(b - a) / 1000);
    const plainCut = quantile(allPlain, TRACE_KEEP_QUANTILE);
    const plainUs = allPlain.filter((x) => x <= plainCut);
    return {
      rows: HOPS.map(([where, what], h) => ({ where, what, meanUs: mean(perHop[h] as number[]), p50Us: median(perHop[h] as number[]) })),
      matched: rtts.length,
      samples: windows.length,
      measuredMeanUs: mean(rtts),
      measuredP50Us: median(rtts),
      untracedMeanUs: mean(plainUs),
      untracedP50Us: median(plainUs),
      ...(traced.then === undefined ? {} : { loaded: analyseLoaded(events, traced.then, targets.echo) }),
    };
  } finally {
    for (const c of children) await c.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function renderTrace(data: unknown, results: Parameters<Parameters<typeof registerModule>[0]['render']>[1]): string | undefined {
  const d = data as TraceResult & { error?: string };
  if (d.error !== undefined) return `not measured: ${d.error}`;
  if (d.matched === 0) return `not measured: none of ${d.samples} traced round trips had every point (is tracing in the build?)`;
  const f = (v: number): string => (Number.isFinite(v) ? v.toFixed(1) : '-');
  const sum = d.rows.reduce((s, r) => s + r.meanUs, 0);
  // The check that matters: the traced round trip against the same loop through an untraced tunnel.
  const off = Math.abs(sum - d.untracedMeanUs) / d.untracedMeanUs;
  const untraced = metric(results, 'rtt', 'devstreams', 'loopback', 'p50_us');
  const lines = [
    `One ${RTT_PAYLOAD_BYTES}-byte round trip (back to back, no other traffic) through the tunnel on loopback, split at the points each process stamps when ` +
      `\`${TRACE_ENV}\` is set (\`src/util/trace.ts\`; off by default, one comparison per point when off). All processes read the ` +
      `same monotonic clock. ${d.matched} of ${d.samples} traced round trips had every point and were no slower than the loop's ` +
      `p${TRACE_KEEP_QUANTILE * 100} (the slowest are scheduling stalls; the untraced loop is trimmed alike); rows are means over them (so they add ` +
      'up) with the median beside. "kernel" rows are socket write to socket read between two processes: the loopback TCP path ' +
      "and the reader's wake-up (its event loop's latency).",
    '',
    '| # | where | what | mean us | p50 us |',
    '| --- | --- | --- | --- | --- |',
    ...d.rows.map((r, i) => `| ${i + 1} | ${r.where} | ${r.what} | ${f(r.meanUs)} | ${f(r.p50Us)} |`),
    `|  | **sum** |  | **${f(sum)}** |  |`,
    '',
    `Sum of the rows ${f(sum)} us (= the traced round trips' mean at the client, ${f(d.measuredMeanUs)} us; p50 ${f(d.measuredP50Us)} us) against the same ` +
      `back-to-back loop through a tunnel started without tracing: mean ${f(d.untracedMeanUs)} us, p50 ${f(d.untracedP50Us)} us ` +
      `(${off <= TRACE_SUM_TOLERANCE ? 'within' : '**not within**'} ${TRACE_SUM_TOLERANCE * 100} %: ${(off * 100).toFixed(1)} % apart; the difference is the trace's own cost plus noise).` +
      (untraced !== undefined ? ` The untraced \`rtt\` scenario's p50 through the tunnel in this run: ${f(untraced)} us.` : ''),
    '',
    'Per process (sum of its rows): ' +
      ['service proxy', 'hub', 'device proxy', 'kernel', 'kernel + echo']
        .map((w) => `${w} ${f(d.rows.filter((r) => r.where === w).reduce((s, r) => s + r.meanUs, 0))} us`)
        .join(', ') +
      '.',
  ];
  return [...lines, '', renderLoaded(d.loaded)].join('\n');
}

function renderLoaded(l: LoadedResult | undefined): string {
  const head = '### Under bulk: where the interactive round trip waits\n\n';
  if (l === undefined) return `${head}not measured: iperf3 not installed.`;
  if (l.matched === 0) return `${head}not measured: none of ${l.samples} loaded round trips had every point.`;
  const f = (v: number): string => (Number.isFinite(v) ? v.toFixed(0) : '-');
  const fwd = l.rows[1] as TraceHopRow;
  const kernelUs =
    l.kernelQueuedBytes !== undefined && l.bulkMBps !== undefined && l.bulkMBps > 0 ? l.kernelQueuedBytes / l.bulkMBps : undefined;
  const rows = l.rows.map((r, i) => `| ${i + 1} | ${r.where} | ${r.what} | ${f(r.meanUs)} | ${f(r.p50Us)} |`);
  const split =
    kernelUs === undefined
      ? '(kernel queues not read: `ss` missing or no samples)'
      : `Of row 2's mean ${f(fwd.meanUs)} us, the kernel's queues account for about ${f(Math.min(kernelUs, fwd.meanUs))} us: ` +
        `${((l.kernelQueuedBytes as number) / 1e3).toFixed(0)} kB on average in Send-Q + Recv-Q of the stream's four sockets (\`ss -tn\`, ${l.ssSamples} samples ` +
        `every ${TRACE_SS_INTERVAL_MS} ms) drained at the bulk's ${(l.bulkMBps as number).toFixed(0)} MB/s; the rest, about ${f(Math.max(0, fwd.meanUs - kernelUs))} us, ` +
        "waits in user space (the mux and seal queues and websocket buffer of the service proxy, the hub's splice queue, the device proxy's read).";
  return (
    head +
    `The interactive connection's 64-byte round trips (one every ${TRACE_LOADED_GAP_MS} ms) while iperf3 saturates the same stream, split at the ` +
    `points the proxies stamp on that connection's own sockets (tagged by port): ${l.matched} of ${l.samples} round trips matched, mean ` +
    `${f(l.measuredMeanUs)} us. Past the mux the records of both connections share every queue, so row 2 is all the queues ahead of it.\n\n` +
    '| # | where | what | mean us | p50 us |\n| --- | --- | --- | --- | --- |\n' +
    `${rows.join('\n')}\n\n${split}`
  );
}

registerModule({
  id: 'trace',
  title: 'Where the round trip goes',
  order: 20,
  collect: (ctx) => collectTrace(ctx.quick, ctx.progress),
  render: renderTrace,
});
