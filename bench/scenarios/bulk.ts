// Bulk throughput: one connection (every placement, sized to the link) and 8 concurrent
// connections (loopback). Also measures CPU and peak RSS of each path process per GiB moved.
import { measureProcesses } from '../sampler.js';
import { bulkSend, type BulkResult } from './net.js';
import type { Scenario, ScenarioContext, ScenarioOutcome } from './types.js';

/** Connections of the multi-connection bulk scenario. */
export const BULK_MULTI_CONNECTIONS = 8;
const MB = 1e6;
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
    ctx.progress(`${(counter.written / MB).toFixed(0)} of ${(total / MB).toFixed(0)} MB sent, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
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
  const seconds = only !== undefined && only.complete && only.receiveSeconds > 0 ? only.receiveSeconds : result.seconds;
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

export const bulkOne: Scenario = {
  id: 'bulk-1',
  title: 'Bulk throughput, one connection',
  placements: 'all',
  columns: BULK_COLUMNS,
  primary: BULK_PRIMARY,
  run: (ctx) => runBulk(ctx, 1, bytesFor(ctx, ctx.budget.bulkBytes)),
};

export const bulkMulti: Scenario = {
  id: 'bulk-8',
  title: `Bulk throughput, ${BULK_MULTI_CONNECTIONS} concurrent connections`,
  placements: 'loopback',
  columns: BULK_COLUMNS,
  primary: BULK_PRIMARY,
  run: (ctx) => runBulk(ctx, BULK_MULTI_CONNECTIONS, bytesFor(ctx, ctx.budget.bulkBytesPerConn)),
};
