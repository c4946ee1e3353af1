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
import { devstreamsPath } from './paths/devstreams.js';
import { findPlacement, type Placement } from './placements.js';
import { benchScript, spawnNodeReady, type Child } from './procs.js';
import { registerModule } from './report/registry.js';
import { metric } from './results.js';
import type { TargetPorts } from './targets.js';
import { TRACE_ENV, TRACE_FLUSH_MS } from '../src/util/trace.js';

/** Round trips thrown away first (JIT, windows), traced round trips kept, pause between them. */
export const TRACE_BUDGET = { quick: { warmup: 300, samples: 50 }, full: { warmup: 2000, samples: 500 } } as const;
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
}

interface Event {
  readonly t: bigint;
  readonly role: Role;
  readonly point: string;
}

function readTraces(dir: string): Event[] {
  const out: Event[] = [];
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.trace'))) {
    const lines = fs.readFileSync(path.join(dir, f), 'utf8').split('\n');
    const cmd = (lines[0] ?? '').replace(/^# /, '').trim();
    const role: Role | undefined = cmd === 'hub' ? 'hub' : cmd === 'device-proxy' ? 'device-proxy' : cmd === 'service-proxy' ? 'service-proxy' : undefined;
    if (role === undefined) continue;
    for (const l of lines.slice(1)) {
      if (l === '' || l.startsWith('#')) continue;
      const sp = l.indexOf(' ');
      out.push({ t: BigInt(l.slice(0, sp)), role, point: l.slice(sp + 1) });
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
    while (i < events.length && (events[i] as Event).t <= t1 && !((events[i] as Event).t >= last && (events[i] as Event).role === hop.role && (events[i] as Event).point === hop.point)) i++;
    if (i >= events.length || (events[i] as Event).t > t1) return undefined;
    last = (events[i] as Event).t;
    times.push(last);
    i++;
  }
  times.push(t1);
  return times;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? NaN;

async function echoClient(port: number): Promise<{ roundTrip: () => Promise<[bigint, bigint]>; close: () => void }> {
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
async function loop(targets: TargetPorts, tmp: string, progress: (d: string) => void, warmup: number, samples: number, env: Record<string, string>): Promise<Array<[bigint, bigint]>> {
  const running = await devstreamsPath.start({ targets, placement: findPlacement('loopback') as Placement, tmpDir: tmp, log: progress, env });
  try {
    const client = await echoClient(running.ports.echo);
    try {
      for (let i = 0; i < warmup; i++) await client.roundTrip();
      const windows: Array<[bigint, bigint]> = [];
      for (let i = 0; i < samples; i++) windows.push(await client.roundTrip());
      return windows;
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
    const targets = { ...t.ready.ports, iperf: 1 } as TargetPorts;
    progress(`${budget.samples} round trips untraced, then traced`);
    const plain = await loop(targets, tmp, progress, budget.warmup, budget.samples, {});
    const windows = await loop(targets, tmp, progress, budget.warmup, budget.samples, { [TRACE_ENV]: traceDir });
    await new Promise((r) => setTimeout(r, 3 * TRACE_FLUSH_MS));
    const events = readTraces(traceDir);
    const perHop: number[][] = HOPS.map(() => []);
    const rtts: number[] = [];
    let from = 0;
    for (const [t0, t1] of windows) {
      while (from < events.length && (events[from] as Event).t < t0) from++;
      const times = matchSequence(events, from, t0, t1);
      if (times === undefined) continue;
      for (let h = 0; h < HOPS.length; h++) (perHop[h] as number[]).push(Number((times[h + 1] as bigint) - (times[h] as bigint)) / 1000);
      rtts.push(Number(t1 - t0) / 1000);
    }
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const plainUs = plain.map(([a, b]) => Number(b - a) / 1000);
    return {
      rows: HOPS.map(([where, what], h) => ({ where, what, meanUs: mean(perHop[h] as number[]), p50Us: median(perHop[h] as number[]) })),
      matched: rtts.length,
      samples: windows.length,
      measuredMeanUs: mean(rtts),
      measuredP50Us: median(rtts),
      untracedMeanUs: mean(plainUs),
      untracedP50Us: median(plainUs),
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
      `same monotonic clock. ${d.matched} of ${d.samples} traced round trips had every point; rows are means over them (so they add ` +
      'up) with the median beside. "kernel" rows are socket write to socket read between two processes: the loopback TCP path ' +
      'and the reader\'s wake-up.',
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
      ['service proxy', 'hub', 'device proxy', 'kernel', 'kernel + echo'].map((w) => `${w} ${f(d.rows.filter((r) => r.where === w).reduce((s, r) => s + r.meanUs, 0))} us`).join(', ') +
      '.',
    '',
    'Under bulk (the interactive round trip while iperf3 saturates the stream, with the time waited in each user-space and ' +
      'kernel queue) is not broken down yet: the points above carry no channel id, so a bulk record and the interactive one ' +
      'cannot be told apart past the mux.',
  ];
  return lines.join('\n');
}

registerModule({
  id: 'trace',
  title: 'Where the round trip goes',
  order: 20,
  collect: (ctx) => collectTrace(ctx.quick, ctx.progress),
  render: renderTrace,
});
