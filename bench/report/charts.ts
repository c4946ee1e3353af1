// Charts for RESULTS.md, drawn as SVG with vega-lite (compiled to vega, rendered headless; no canvas
// and no browser needed): loopback throughput bars, and round-trip percentiles per placement.
import fs from 'node:fs';
import path from 'node:path';
import * as vega from 'vega';
import * as vl from 'vega-lite';
import type { BenchResults } from '../results.js';

async function renderSvg(spec: vl.TopLevelSpec): Promise<string> {
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function throughputSpec(r: BenchResults): vl.TopLevelSpec | undefined {
  const values = r.records
    .filter((x) => x.placement === 'loopback' && (x.scenario === 'bulk-1' || x.scenario === 'bulk-8') && x.error === undefined)
    .map((x) => ({ scenario: x.scenario === 'bulk-1' ? '1 connection' : '8 connections', path: x.path, MBps: x.metrics.MBps ?? 0 }));
  if (values.length === 0) return undefined;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Bulk throughput on loopback (MB/s, higher is better)',
    data: { values },
    mark: 'bar',
    width: 220,
    height: 220,
    encoding: {
      column: { field: 'scenario', type: 'nominal', title: null },
      x: { field: 'path', type: 'nominal', title: null, sort: null },
      y: { field: 'MBps', type: 'quantitative', title: 'MB/s' },
      color: { field: 'path', type: 'nominal', sort: null },
    },
  };
}

function rttSpec(r: BenchResults): vl.TopLevelSpec | undefined {
  const values = r.records
    .filter((x) => x.scenario === 'rtt' && x.error === undefined)
    .flatMap((x) =>
      (['p50', 'p90', 'p99'] as const).map((q) => ({ placement: x.placement, path: x.path, percentile: q, ms: (x.metrics[`${q}_us`] ?? NaN) / 1000 })),
    )
    .filter((v) => Number.isFinite(v.ms) && v.ms > 0);
  if (values.length === 0) return undefined;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: '64-byte round trip percentiles per placement (ms, log scale, lower is better)',
    data: { values },
    mark: 'bar',
    width: 140,
    height: 200,
    encoding: {
      column: { field: 'placement', type: 'nominal', title: null, sort: r.placements.map((p) => p.id) },
      x: { field: 'path', type: 'nominal', title: null, sort: null },
      xOffset: { field: 'percentile', type: 'nominal', sort: ['p50', 'p90', 'p99'] },
      y: { field: 'ms', type: 'quantitative', title: 'ms', scale: { type: 'log' } },
      color: { field: 'percentile', type: 'nominal', sort: ['p50', 'p90', 'p99'] },
    },
    resolve: { scale: { y: 'independent' } },
  };
}

/** Writes the charts into dir; returns chart id -> absolute file path of those drawn. */
export async function writeCharts(r: BenchResults, dir: string): Promise<Record<string, string>> {
  const specs: Array<[string, vl.TopLevelSpec | undefined]> = [
    ['throughput', throughputSpec(r)],
    ['rtt-percentiles', rttSpec(r)],
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
