// `--compare FILE`: this run against an earlier raw result (results.json), row by row on each
// scenario's main figure, with both runs' spreads over rounds, so that a change is judged against
// the noise rather than against one lucky run. A row whose ranges overlap is "within noise".
import fs from 'node:fs';
import { metricSpread, type BenchResults, type Spread } from './results.js';
import { SCENARIOS } from './scenarios/index.js';

export interface CompareRow {
  readonly scenario: string;
  readonly placement: string;
  readonly path: string;
  readonly metric: string;
  readonly now: Spread | undefined;
  readonly before: Spread | undefined;
  /** "better", "worse", "within noise" (ranges overlap), or "not in the earlier run". */
  readonly verdict: string;
}

export function loadResults(file: string): BenchResults {
  const r = JSON.parse(fs.readFileSync(file, 'utf8')) as BenchResults;
  if (!Array.isArray(r.records)) throw new Error(`${file} is not a bench results.json (no records)`);
  return r;
}

function verdict(now: Spread | undefined, before: Spread | undefined, higherIsBetter: boolean): string {
  if (before === undefined) return 'not in the earlier run';
  if (now === undefined) return 'failed in this run';
  if (now.min <= before.max && before.min <= now.max) return 'within noise';
  return now.median > before.median === higherIsBetter ? 'better' : 'worse';
}

/** Rows for every scenario/placement/path this run measured, in report order. */
export function compareRows(now: BenchResults, before: BenchResults): CompareRow[] {
  const rows: CompareRow[] = [];
  const keys = new Set(now.records.map((x) => `${x.scenario}\u0000${x.placement}\u0000${x.path}`));
  const order = (id: string): number => SCENARIOS.findIndex((s) => s.id === id);
  const sorted = [...keys].map((k) => k.split('\u0000') as [string, string, string]).sort((a, b) => order(a[0]) - order(b[0]));
  for (const [scenario, placement, path] of sorted) {
    const s = SCENARIOS.find((x) => x.id === scenario);
    if (s === undefined) continue;
    const m = s.primary.metric;
    const a = metricSpread(now, scenario, path, placement, m);
    const b = metricSpread(before, scenario, path, placement, m);
    rows.push({ scenario, placement, path, metric: m, now: a, before: b, verdict: verdict(a, b, s.primary.higherIsBetter) });
  }
  return rows;
}

const num = (v: number): string => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));
const cell = (s: Spread | undefined): string => (s === undefined ? '-' : `${num(s.median)} (${num(s.min)}-${num(s.max)}, ${s.n} rounds)`);

/** Markdown table of the comparison. */
export function renderCompare(now: BenchResults, before: BenchResults, label: string): string {
  const rows = compareRows(now, before).map((r) => {
    const change =
      r.now !== undefined && r.before !== undefined && r.before.median !== 0
        ? `${r.now.median >= r.before.median ? '+' : ''}${(100 * (r.now.median / r.before.median - 1)).toFixed(0)}%`
        : '-';
    return `| ${r.scenario} | ${r.placement} | ${r.path} | ${r.metric} | ${cell(r.now)} | ${cell(r.before)} | ${change} | ${r.verdict} |`;
  });
  return [
    `## Compared with ${label} (${before.startedAt}, commit ${before.machine.gitCommit ?? 'unknown'})`,
    '',
    'Each scenario\'s main figure: median (min-max over rounds) in this run and in the earlier one. Overlapping ranges are "within noise".',
    '',
    '| scenario | placement | path | metric | this run | earlier run | change | verdict |',
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n');
}
