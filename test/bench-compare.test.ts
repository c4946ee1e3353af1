// `npm run bench -- --compare FILE`: this run against an earlier one, row by row, judged by whether
// the two runs' ranges over rounds overlap.
import { describe, expect, it } from 'vitest';
import { compareRows, renderCompare } from '../bench/compare.js';
import { PLACEMENTS } from '../bench/placements.js';
import type { BenchResults, RunRecord } from '../bench/results.js';

function run(records: RunRecord[]): BenchResults {
  return {
    version: 1,
    startedAt: '2026-01-01T00:00:00Z',
    finishedAt: 'x',
    quick: false,
    argv: [],
    machine: { cpuModel: 'cpu', cpuCount: 2, ramBytes: 1, os: 'os', node: 'v20', openssh: undefined, gitCommit: 'abc123' },
    placements: PLACEMENTS.slice(0, 1),
    paths: [
      { id: 'direct', title: 'direct' },
      { id: 'devstreams', title: 'tunnel' },
    ],
    scenarios: ['bulk-1', 'rtt'],
    records,
    modules: {},
  };
}

const rec = (scenario: string, path: string, round: number, metrics: Record<string, number>): RunRecord => ({
  scenario,
  path,
  placement: 'loopback',
  round,
  metrics,
});

describe('bench --compare', () => {
  const before = run([
    rec('bulk-1', 'devstreams', 1, { MBps: 300 }),
    rec('bulk-1', 'devstreams', 2, { MBps: 320 }),
    rec('bulk-1', 'devstreams', 3, { MBps: 340 }),
    rec('rtt', 'devstreams', 1, { p50_us: 200 }),
    rec('rtt', 'devstreams', 2, { p50_us: 210 }),
  ]);
  const now = run([
    rec('bulk-1', 'devstreams', 1, { MBps: 330 }),
    rec('bulk-1', 'devstreams', 2, { MBps: 350 }),
    rec('bulk-1', 'devstreams', 3, { MBps: 360 }),
    rec('rtt', 'devstreams', 1, { p50_us: 150 }),
    rec('rtt', 'devstreams', 2, { p50_us: 160 }),
    rec('rtt', 'direct', 1, { p50_us: 30 }),
  ]);

  it('judges each row against both spreads: overlap is noise, a clear move is better or worse by the metric direction', () => {
    const rows = compareRows(now, before);
    const by = (s: string, p: string): string | undefined => rows.find((r) => r.scenario === s && r.path === p)?.verdict;
    expect(by('bulk-1', 'devstreams')).toBe('within noise');
    expect(by('rtt', 'devstreams')).toBe('better');
    expect(by('rtt', 'direct')).toBe('not in the earlier run');
    const slower = run([rec('rtt', 'devstreams', 1, { p50_us: 400 }), rec('rtt', 'devstreams', 2, { p50_us: 420 })]);
    expect(compareRows(slower, before).find((r) => r.scenario === 'rtt')?.verdict).toBe('worse');
  });

  it('prints both medians with their min-max and round counts', () => {
    const md = renderCompare(now, before, 'old.json');
    expect(md).toContain('## Compared with old.json (2026-01-01T00:00:00Z, commit abc123)');
    expect(md).toContain(
      '| bulk-1 | loopback | devstreams | MBps | 350 (330-360, 3 rounds) | 320 (300-340, 3 rounds) | +9% | within noise |',
    );
    expect(md).toContain('| rtt | loopback | devstreams | p50_us | 155 (150-160, 2 rounds) | 205 (200-210, 2 rounds) | -24% | better |');
  });
});
