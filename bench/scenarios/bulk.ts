// Bulk throughput: one connection (every placement, sized to the link) and 8 concurrent
// connections (loopback), with iperf3 as the load (`bulk-1`, `bulk-8`; the throughput goals use
// these) and the bench's own Node generator as a second row (`bulk-1-node`, `bulk-8-node`, loopback
// only: it checks the byte count at the sink). Also measures CPU and peak RSS of each path process
// per GiB moved.
import { BULK_MULTI_OMIT_SECONDS } from '../config.js';
import { iperf3Send, iperf3Unavailable, type Iperf3Amount } from '../iperf3.js';
import type { RunningPath } from '../paths/types.js';
import { measureProcesses } from '../sampler.js';
import { bulkSend, type BulkResult } from './net.js';
import type { Scenario, ScenarioContext, ScenarioOutcome } from './types.js';

/** Connections of the multi-connection bulk scenario. */
export const BULK_MULTI_CONNECTIONS = 8;
const MB = 1e6;
/**
 * Before its first `bulk-1` round on loopback, every path moves one untimed transfer of the round's
 * size (the same for every path), as the round-trip scenarios throw away their first round trips:
 * a Node process compiles its per-record code over the first few hundred megabytes it moves (150-190
 * optimising compilations per proxy in the first 256 MiB, a tenth of that by the third, counted with
 * --trace-opt), and a proxy lives far longer than that. The warm-up's own rate is reported beside
 * the rounds (`first_MBps`), so the cold start stays in the table.
 */
const warmedUp = new WeakSet<RunningPath>();
/** How often a running bulk transfer prints how far it got. */
export const BULK_PROGRESS_INTERVAL_MS = 2_000;

function bytesFor(ctx: ScenarioContext, uncapped: number): number {
  const cap = ctx.path.capacityMBps;
  if (cap <= 0) return uncapped;
  return Math.min(uncapped, Math.round(cap * MB * ctx.budget.bulkCappedSeconds));
}

async function runBulk(ctx: ScenarioContext, conns: number, bytesEach: number): Promise<ScenarioOutcome> {
  ctx.progress(`${conns} x ${(bytesEach / MB).toFixed(0)} MB`);
  const counter = { written: 0 };
  const total = conns * bytesEach;
  const t0 = performance.now();
  const ticker = setInterval(() => {
    const s = (performance.now() - t0) / 1000;
    ctx.progress(
      `${(counter.written / MB).toFixed(0)} of ${(total / MB).toFixed(0)} MB sent in ${s.toFixed(0)} s (${(counter.written / MB / s).toFixed(0)} MB/s)`,
    );
  }, BULK_PROGRESS_INTERVAL_MS);
  const { result, usage } = await measureProcesses(ctx.path.processes, async () => {
    const runs: BulkResult[] = await Promise.all(
      Array.from({ length: conns }, () => bulkSend(ctx.path.ports.sink, bytesEach, ctx.budget.bulkTimeoutMs, undefined, counter)),
    );
    return { runs, seconds: (performance.now() - t0) / 1000 };
  }).finally(() => clearInterval(ticker));
  const bytes = result.runs.reduce((s, r) => s + r.bytes, 0);
  const partial = result.runs.some((r) => !r.complete);
  // One connection: bytes over the sink's receive time (no setup, no round trip), which is what a
  // long transfer sees. Several connections: bytes over wall time of the whole batch.
  const only = result.runs.length === 1 ? result.runs[0] : undefined;
  const seconds = only?.complete && only.receiveSeconds > 0 ? only.receiveSeconds : result.seconds;
  const MBps = bytes / MB / seconds;
  const metrics: Record<string, number> = { MBps, bytes, seconds: result.seconds };
  if (ctx.path.capacityMBps > 0) {
    metrics.link_MBps = ctx.path.capacityMBps;
    metrics.link_pct = (100 * MBps) / ctx.path.capacityMBps;
  }
  return {
    metrics,
    usage,
    usageBytes: bytes,
    partial,
    ...(partial ? { note: `time limit ${ctx.budget.bulkTimeoutMs} ms hit; bytes written, not confirmed` } : {}),
  };
}

const BULK_COLUMNS = [
  { metric: 'MBps', label: 'MB/s', digits: 1 },
  { metric: 'link_pct', label: '% of link', digits: 0 },
  { metric: 'seconds', label: 's', digits: 2 },
];
const BULK_PRIMARY = { metric: 'MBps', higherIsBetter: true };

/**
 * iperf3 through the path: one connection moves a byte count on an uncapped link; several
 * connections run for `bulkMultiSeconds` after BULK_MULTI_OMIT_SECONDS left out; a capped link
 * runs for the capped-link duration.
 */
async function runIperf3(ctx: ScenarioContext, conns: number, bytesTotal: number): Promise<ScenarioOutcome> {
  const capped = ctx.path.capacityMBps > 0;
  const timed = capped || conns > 1;
  const seconds = capped ? ctx.budget.bulkCappedSeconds : ctx.budget.bulkMultiSeconds;
  const omit = !capped && conns > 1 ? BULK_MULTI_OMIT_SECONDS : 0;
  const amount: Iperf3Amount = timed ? { seconds } : { bytes: bytesTotal };
  ctx.progress(
    `iperf3 -P ${conns}, ${timed ? `${seconds} s${omit > 0 ? ` after ${omit} s left out` : ''}` : `${(bytesTotal / MB).toFixed(0)} MB`}`,
  );
  const { result, usage } = await measureProcesses(ctx.path.processes, () =>
    iperf3Send(ctx.path.ports.iperf, amount, conns, ctx.budget.bulkTimeoutMs, omit),
  );
  const metrics: Record<string, number> = { MBps: result.MBps, bytes: result.bytes, seconds: result.seconds };
  if (result.endpointCpuSeconds !== undefined) metrics.ends_cpu_s = result.endpointCpuSeconds;
  if (ctx.path.capacityMBps > 0) {
    metrics.link_MBps = ctx.path.capacityMBps;
    metrics.link_pct = (100 * result.MBps) / ctx.path.capacityMBps;
  }
  // CPU was sampled over the whole run, omitted start included: divide by every byte it moved.
  return { metrics, usage, usageBytes: result.totalBytes ?? result.bytes };
}

/** The untimed first transfer through a path on loopback (see warmedUp): its rate, MB/s, or undefined when done before. */
async function warmUp(ctx: ScenarioContext, bytes: number): Promise<number | undefined> {
  if (!ctx.placement.loopback || warmedUp.has(ctx.path)) return undefined;
  warmedUp.add(ctx.path);
  ctx.progress(`warm-up: iperf3, ${(bytes / MB).toFixed(0)} MB untimed`);
  return (await iperf3Send(ctx.path.ports.iperf, { bytes }, 1, ctx.budget.bulkTimeoutMs)).MBps;
}

export const bulkOne: Scenario = {
  id: 'bulk-1',
  title:
    'Bulk throughput, one connection (iperf3; on loopback after one untimed transfer of the same size through each path, the same for every path, whose rate is "first transfer MB/s")',
  placements: 'all',
  columns: [...BULK_COLUMNS, { metric: 'first_MBps', label: 'first transfer MB/s', digits: 1 }],
  primary: BULK_PRIMARY,
  unavailableReason: iperf3Unavailable,
  run: async (ctx) => {
    const bytes = bytesFor(ctx, ctx.budget.bulkBytes);
    const first = await warmUp(ctx, bytes);
    const outcome = await runIperf3(ctx, 1, bytes);
    return first === undefined ? outcome : { ...outcome, metrics: { ...outcome.metrics, first_MBps: first } };
  },
};

export const bulkMulti: Scenario = {
  id: 'bulk-8',
  title: `Bulk throughput, ${BULK_MULTI_CONNECTIONS} concurrent connections (iperf3 -P ${BULK_MULTI_CONNECTIONS} for a fixed time, its first ${BULK_MULTI_OMIT_SECONDS} s left out)`,
  placements: 'loopback',
  columns: BULK_COLUMNS,
  primary: BULK_PRIMARY,
  unavailableReason: iperf3Unavailable,
  run: (ctx) => runIperf3(ctx, BULK_MULTI_CONNECTIONS, BULK_MULTI_CONNECTIONS * bytesFor(ctx, ctx.budget.bulkBytesPerConn)),
};

export const bulkOneNode: Scenario = {
  id: 'bulk-1-node',
  title: 'Bulk throughput, one connection (Node generator, byte count checked at the sink)',
  placements: 'loopback',
  columns: BULK_COLUMNS,
  primary: BULK_PRIMARY,
  run: (ctx) => runBulk(ctx, 1, bytesFor(ctx, ctx.budget.bulkBytes)),
};

export const bulkMultiNode: Scenario = {
  id: 'bulk-8-node',
  title: `Bulk throughput, ${BULK_MULTI_CONNECTIONS} concurrent connections (Node generator)`,
  placements: 'loopback',
  columns: BULK_COLUMNS,
  primary: BULK_PRIMARY,
  run: (ctx) => runBulk(ctx, BULK_MULTI_CONNECTIONS, bytesFor(ctx, ctx.budget.bulkBytesPerConn)),
};
