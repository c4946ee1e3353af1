// Charts for RESULTS.md, drawn as SVG with vega-lite (compiled to vega, rendered headless; no canvas
// and no browser needed): loopback throughput bars, round-trip percentiles per placement, and the
// interactive channel's p99 under bulk per path. Bars are medians over paired rounds, whiskers the
// min-max over rounds. Linear axes, one per panel: a log axis cannot start a bar at zero, and the
// placements differ by orders of magnitude, so each panel gets its own scale.
import fs from 'node:fs';
import path from 'node:path';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import { metricSpread, type BenchResults } from '../results.js';

async function renderSvg(spec: vl.TopLevelSpec): Promise<string> {
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

interface Bar {
  readonly panel: string;
  readonly path: string;
  readonly series?: string;
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly label: string;
}

/** Paths that ran, in report order. */
function ranPaths(r: BenchResults): string[] {
  return r.paths.filter((p) => p.skipped === undefined).map((p) => p.id);
}

/**
 * Faceted bars with min-max whiskers and the median printed above each bar. Each panel has its own
 * x (only the paths that ran in it: no empty slots) and its own y scale.
 */
function barsSpec(
  title: string,
  yTitle: string,
  values: Bar[],
  panelOrder: readonly string[],
  pathOrder: readonly string[],
): vl.TopLevelSpec {
  const x = { field: 'path', type: 'nominal' as const, title: null, sort: pathOrder as string[], axis: { labelAngle: -30 } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, anchor: 'start' },
    data: { values: values as unknown as Record<string, unknown>[] },
    facet: { column: { field: 'panel', type: 'nominal', title: null, sort: panelOrder as string[] } },
    spec: {
      width: 200,
      height: 220,
      layer: [
        {
          mark: 'bar',
          encoding: {
            x,
            y: { field: 'median', type: 'quantitative', title: yTitle },
            color: { field: 'path', type: 'nominal', sort: pathOrder as string[], legend: null },
          },
        },
        { mark: { type: 'rule', color: '#333' }, encoding: { x, y: { field: 'min', type: 'quantitative' }, y2: { field: 'max' } } },
        {
          mark: { type: 'text', dy: -8, fontSize: 9 },
          encoding: { x, y: { field: 'max', type: 'quantitative' }, text: { field: 'label', type: 'nominal' } },
        },
      ],
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
  };
}

/**
 * Faceted percentile dots: per path, one dot per percentile (median over rounds) on a whisker
 * (min-max over rounds), p50 printed. Dots need no zero baseline, and each panel has its own scale.
 */
function percentileSpec(
  title: string,
  yTitle: string,
  values: Bar[],
  panelOrder: readonly string[],
  pathOrder: readonly string[],
): vl.TopLevelSpec {
  const x = { field: 'path', type: 'nominal' as const, title: null, sort: pathOrder as string[], axis: { labelAngle: -30 } };
  const color = { field: 'series', type: 'nominal' as const, title: 'percentile', sort: ['p50', 'p90', 'p99'] };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, anchor: 'start' },
    data: { values: values as unknown as Record<string, unknown>[] },
    facet: { column: { field: 'panel', type: 'nominal', title: null, sort: panelOrder as string[] } },
    spec: {
      width: 150,
      height: 220,
      layer: [
        {
          mark: { type: 'rule', opacity: 0.6 },
          encoding: { x, y: { field: 'min', type: 'quantitative', title: yTitle, scale: { zero: true } }, y2: { field: 'max' }, color },
        },
        { mark: { type: 'point', filled: true, size: 60 }, encoding: { x, y: { field: 'median', type: 'quantitative' }, color } },
        {
          mark: { type: 'text', dx: 14, fontSize: 9, align: 'left' },
          encoding: { x, y: { field: 'median', type: 'quantitative' }, text: { field: 'label', type: 'nominal' } },
        },
      ],
    },
    resolve: { scale: { x: 'independent', y: 'independent' } },
  };
}

const fmt = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

function throughputSpec(r: BenchResults): vl.TopLevelSpec | undefined {
  const panels: Array<[string, string]> = [
    ['bulk-1', '1 connection (iperf3)'],
    ['bulk-8', '8 connections (iperf3 -P 8)'],
    ['bulk-1-node', '1 connection (Node generator)'],
    ['bulk-8-node', '8 connections (Node generator)'],
  ];
  const values: Bar[] = [];
  for (const [scenario, panel] of panels) {
    for (const p of ranPaths(r)) {
      const s = metricSpread(r, scenario, p, 'loopback', 'MBps');
      if (s !== undefined) values.push({ panel, path: p, median: s.median, min: s.min, max: s.max, label: fmt(s.median) });
    }
  }
  if (values.length === 0) return undefined;
  return barsSpec(
    'Bulk throughput on loopback, MB/s (median over rounds, whisker min-max; higher is better)',
    'MB/s',
    values,
    panels.map((p) => p[1]),
    ranPaths(r),
  );
}

function rttSpec(r: BenchResults): vl.TopLevelSpec | undefined {
  const values: Bar[] = [];
  for (const pl of r.placements) {
    for (const p of ranPaths(r)) {
      for (const q of ['p50', 'p90', 'p99'] as const) {
        const s = metricSpread(r, 'rtt', p, pl.id, `${q}_us`);
        if (s === undefined || !(s.median > 0)) continue;
        values.push({
          panel: pl.id,
          path: p,
          series: q,
          median: s.median / 1000,
          min: s.min / 1000,
          max: s.max / 1000,
          label: q === 'p50' ? fmt(s.median / 1000) : '',
        });
      }
    }
  }
  if (values.length === 0) return undefined;
  return percentileSpec(
    '64-byte round trip per placement, ms (dot: median over rounds, whisker: min-max; own scale per panel; lower is better)',
    'ms',
    values,
    r.placements.map((p) => p.id),
    ranPaths(r),
  );
}

function interactiveSpec(r: BenchResults): vl.TopLevelSpec | undefined {
  const values: Bar[] = [];
  for (const p of ranPaths(r)) {
    const s = metricSpread(r, 'interactive', p, 'loopback', 'p99_us');
    if (s !== undefined)
      values.push({
        panel: 'loopback, under iperf3 bulk',
        path: p,
        median: s.median / 1000,
        min: s.min / 1000,
        max: s.max / 1000,
        label: fmt(s.median / 1000),
      });
  }
  if (values.length === 0) return undefined;
  return barsSpec('Interactive p99 under bulk, ms (lower is better)', 'p99 ms', values, ['loopback, under iperf3 bulk'], ranPaths(r));
}

/** Writes the charts into dir; returns chart id -> absolute file path of those drawn. */
export async function writeCharts(r: BenchResults, dir: string): Promise<Record<string, string>> {
  const specs: Array<[string, vl.TopLevelSpec | undefined]> = [
    ['throughput', throughputSpec(r)],
    ['rtt-percentiles', rttSpec(r)],
    ['interactive-p99', interactiveSpec(r)],
  ];
  const out: Record<string, string> = {};
  fs.mkdirSync(dir, { recursive: true });
  for (const [id, spec] of specs) {
    if (spec === undefined) continue;
    const file = path.join(dir, `${id}.svg`);
    fs.writeFileSync(file, await renderSvg(spec));
    out[id] = file;
  }
  return out;
}
