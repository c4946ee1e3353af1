// Report modules of the mux (issue 2): bulk throughput of the mux against yamux and raw TCP
// (mux-throughput.ts) and tinybench micro-benchmarks of frame encode/decode (mux-micro.ts),
// with the goal rows. Quick mode bounds both to a few seconds.
import { MUX_GOALS, renderMuxSection, roundRatios, runMuxBench, type MuxBenchResult } from './standalone/mux-throughput.js';
import { runMuxMicro, type MicroRow } from './standalone/mux-micro.js';
import { registerModule, type GoalVerdict } from './report/registry.js';
import { median, type BenchResults } from './results.js';

/** Bounds of the mux throughput module: time per case and repeats, quick and full. */
export const MUX_MODULE_BUDGET = { quick: { maxMs: 300, repeats: 2 }, full: { maxMs: 2_000, repeats: 5 } } as const;

function muxData(r: BenchResults): MuxBenchResult | string {
  const d = r.modules.mux as (MuxBenchResult & { error?: string }) | undefined;
  if (d === undefined) return 'mux module not run (--scenarios mux)';
  if (d.error !== undefined) return `mux module failed: ${d.error}`;
  return d;
}

function muxGoal(streams: number, target: number) {
  return (r: BenchResults): GoalVerdict => {
    const d = muxData(r);
    if (typeof d === 'string') return { status: 'not measured', detail: d };
    const ours = d.cases.find((c) => c.impl === 'mux' && c.streams === streams)?.medianMBps;
    const yamux = d.cases.find((c) => c.impl === 'yamux' && c.streams === streams)?.medianMBps;
    // Judged on the per-round ratios: mux and yamux of one round ran back to back.
    const rounds = roundRatios(d.cases, streams);
    const m = median(rounds);
    if (ours === undefined || yamux === undefined || m === undefined)
      return { status: 'not measured', detail: `no ${streams}-stream case` };
    const range = rounds.length > 1 ? ` (rounds ${Math.min(...rounds).toFixed(2)}x to ${Math.max(...rounds).toFixed(2)}x)` : '';
    return {
      status: m >= target ? 'met' : 'not met',
      rounds: `${rounds.filter((x) => x >= target).length} of ${rounds.length}`,
      detail: `median ${m.toFixed(2)}x${range}; medians ${ours.toFixed(0)} vs yamux ${yamux.toFixed(0)} MB/s (TCP, one process each side, paired rounds)`,
    };
  };
}

/** The section's body: renderMuxSection without its own heading. */
function body(d: MuxBenchResult): string {
  return renderMuxSection(d)
    .replace(/^## [^\n]*\n\n?/, '')
    .trimEnd();
}

registerModule({
  id: 'mux',
  title: 'Mux bulk throughput against yamux and raw TCP (`mux`)',
  order: 50,
  async collect(ctx) {
    const b = ctx.quick ? MUX_MODULE_BUDGET.quick : MUX_MODULE_BUDGET.full;
    return runMuxBench({
      quick: ctx.quick,
      maxMs: b.maxMs,
      repeats: b.repeats,
      outFile: null,
      log: (l) => ctx.progress(l.trim()),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    });
  },
  render: (data) => {
    const d = data as MuxBenchResult & { error?: string };
    return d.error !== undefined ? `not measured: ${d.error}` : body(d);
  },
  goals: [
    {
      id: 'mux-1ch-vs-yamux',
      text: `Mux: one channel >= ${MUX_GOALS.single}x yamux's single stream`,
      evaluate: muxGoal(1, MUX_GOALS.single),
    },
    {
      id: 'mux-8ch-vs-yamux',
      text: `Mux: 8 channels >= ${MUX_GOALS.eight.toFixed(1)}x yamux's 8 streams`,
      evaluate: muxGoal(8, MUX_GOALS.eight),
    },
  ],
});

registerModule({
  id: 'mux-micro',
  title: 'Mux frame encode/decode micro-benchmarks (`mux-micro`)',
  order: 51,
  collect: (ctx) => runMuxMicro({ quick: ctx.quick }),
  render: (data) => {
    const d = data as MicroRow[] | { error: string };
    if (!Array.isArray(d)) return `not measured: ${d.error}`;
    const rows = d.map(
      (r) =>
        `| ${r.name} | ${Math.round(r.opsPerSec).toLocaleString('en-US')} | ${r.mbPerSec === null ? '-' : r.mbPerSec.toFixed(0)} | ${r.meanNs.toFixed(0)} |`,
    );
    return [
      'tinybench, one process (`npm run bench:mux:micro`).',
      '',
      '| task | ops/s | MB/s | ns/op |',
      '| --- | ---: | ---: | ---: |',
      ...rows,
    ].join('\n');
  },
});
