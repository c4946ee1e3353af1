// Runs `npm run bench -- --quick` (compiled) on the direct and emulator-only paths, with its default
// outputs (RESULTS-quick.md, bench/results/quick/), and checks the report's structure (headings,
// tables, rounds, ratio columns, goal rows, JSON and charts) and that the committed RESULTS.md,
// charts and raw JSON are byte for byte what they were.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT, RUN_JS, ensureBuilt } from './helpers/build.js';
import type { RunRecord } from '../bench/results.js';
import { fakeResults } from './helpers/bench-results.js';

interface RunOutput {
  code: number | null;
  stderr: string;
}

async function runBench(args: string[]): Promise<RunOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [RUN_JS, ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`bench did not finish in time: ${stderr.slice(-2000)}`));
    }, 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

/** The committed report of record and its files: a quick run must leave every one alone. */
const COMMITTED = [
  'RESULTS.md',
  'bench/results/results.json',
  'bench/results/throughput.svg',
  'bench/results/rtt-percentiles.svg',
  'bench/results/interactive-p99.svg',
];
const QUICK_REPORT = path.join(ROOT, 'RESULTS-quick.md');
const QUICK_DIR = path.join(ROOT, 'bench', 'results', 'quick');

function snapshot(): Record<string, string | undefined> {
  return Object.fromEntries(
    COMMITTED.map((f) => [f, fs.existsSync(path.join(ROOT, f)) ? fs.readFileSync(path.join(ROOT, f), 'utf8') : undefined]),
  );
}

describe('npm run bench -- --quick', () => {
  let report: string;
  let run: RunOutput;
  const before = snapshot();

  beforeAll(async () => {
    ensureBuilt();
    fs.rmSync(QUICK_REPORT, { force: true });
    fs.rmSync(QUICK_DIR, { recursive: true, force: true });
    // Two paired rounds on loopback, one on the emulated placement: a few seconds of traffic.
    run = await runBench([
      '--quick',
      '--paths',
      'direct,emulator',
      '--placements',
      'loopback,same-region',
      '--scenarios',
      'bulk-1,rtt,ttfb',
    ]);
    report = fs.existsSync(QUICK_REPORT) ? fs.readFileSync(QUICK_REPORT, 'utf8') : '';
  }, 90_000);

  it('exits 0, prints progress lines and writes RESULTS-quick.md and bench/results/quick/, not the committed report', () => {
    expect(run.code, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/\[\s*1\/\d+ \d+:\d\d\] direct · loopback · bulk-1 · round 1\/2/);
    expect(run.stderr).toContain(`wrote ${QUICK_REPORT}`);
    expect(fs.existsSync(path.join(QUICK_DIR, 'results-quick.json'))).toBe(true);
    expect(snapshot()).toEqual(before);
  });

  it('has the report sections', () => {
    for (const h of ['# devstreams bench results', '## Goals', '## Machine', '## Paths', '## Placements', '## Scenarios']) {
      expect(report.split('\n')).toContain(h);
    }
    expect(report).toMatch(/^### .*\(`bulk-1`\)$/m);
    expect(report).toMatch(/^### .*\(`rtt`\)$/m);
    expect(report).toMatch(/^### .*\(`ttfb`\)$/m);
    expect(report).toContain('## Per placement: round trip against the legs, throughput against the link');
  });

  it('has scenario tables with ratio columns and a row per placement', () => {
    const bulk = report.slice(report.indexOf('(`bulk-1`)'));
    const header = bulk.split('\n').find((l) => l.startsWith('| placement | path |'));
    expect(header).toBeDefined();
    expect(header).toContain('vs direct');
    expect(header).toContain('vs OpenSSH');
    expect(header).toContain('| rounds |');
    expect(header).toContain('MB/s min-max');
    // Two paired rounds on loopback: median, min-max over rounds, per-round ratio with its range.
    expect(bulk).toMatch(/^\| loopback \| direct \| 2 \| [\d,.]+ \|.*\| [\d,.]+-[\d,.]+ \| 1\.00x \(1\.00-1\.00\) \|/m);
    expect(bulk).toMatch(/^\| same-region \| direct \| 1 \| [\d,.]+ \|/m);
    expect(bulk).toMatch(/^\| same-region \| emulator \| 1 \| [\d,.]+ \|/m);
    // The emulator-only path runs on emulated placements only, and shows what the emulator adds.
    expect(bulk).not.toMatch(/^\| loopback \| emulator \|/m);
    const summary = report.slice(report.indexOf('## Per placement'));
    expect(summary).toMatch(/^\| same-region \| emulator \| [\d.]+ \| [\d.]+ \| -?[\d.]+ \|/m);
  });

  it('lists every goal with a status, and the machine', () => {
    const goals = report.slice(report.indexOf('## Goals'), report.indexOf('## Machine'));
    const rows = goals.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| goal') && !l.startsWith('| ---'));
    expect(rows.length).toBeGreaterThanOrEqual(5);
    for (const r of rows) expect(r).toMatch(/\| (met|\*\*not met\*\*|not measured)(, \d+ of \d+ rounds)? \|/);
    expect(goals).toContain('OpenSSH');
    for (const k of ['CPU', 'RAM', 'Node', 'OpenSSH', 'git commit', 'date']) expect(report).toMatch(new RegExp(`^\\| ${k} \\|`, 'm'));
  });

  it('writes raw JSON and linked SVG charts', () => {
    const json = JSON.parse(fs.readFileSync(path.join(QUICK_DIR, 'results-quick.json'), 'utf8')) as {
      records: { scenario: string; path: string; placement: string; round: number; error?: string }[];
      paths: { id: string; skipped?: string }[];
    };
    expect(new Set(json.records.map((r) => r.scenario))).toEqual(new Set(['bulk-1', 'rtt', 'ttfb']));
    expect(json.records.filter((r) => r.error !== undefined)).toEqual([]);
    expect(json.paths.map((p) => p.id)).toEqual(['direct', 'emulator']);
    expect(
      json.records.filter((r) => r.path === 'direct' && r.placement === 'loopback' && r.scenario === 'rtt').map((r) => r.round),
    ).toEqual([1, 2]);
    for (const m of report.matchAll(/!\[[^\]]*\]\(([^)]+\.svg)\)/g)) {
      const file = path.resolve(ROOT, m[1] as string);
      expect(fs.readFileSync(file, 'utf8')).toMatch(/^<svg/);
    }
    expect(report).toMatch(/!\[throughput\]\(bench\/results\/quick\/throughput\.svg\)/);
  });
});

describe('report registry', () => {
  it('renders a registered module section and its goal row', async () => {
    const { registerModule } = await import('../bench/report/registry.js');
    const { registerBuiltinGoals } = await import('../bench/report/goals.js');
    const { renderReport } = await import('../bench/report/markdown.js');
    registerBuiltinGoals();
    registerModule({
      id: 'demo',
      title: 'Demo module',
      order: 10,
      render: (data) => `value ${(data as { v: number }).v}`,
      goals: [{ id: 'demo-goal', text: 'demo goal holds', evaluate: () => ({ status: 'met', detail: 'by construction' }) }],
    });
    const md = renderReport(
      fakeResults({
        paths: [{ id: 'direct', title: 'direct TCP' }],
        scenarios: ['rtt'],
        records: [{ path: 'direct', placement: 'loopback', scenario: 'rtt', metrics: { p50_us: 50, p90_us: 60, p99_us: 70, samples: 3 } }],
        modules: { demo: { v: 42 } },
      }),
      { charts: {}, jsonRel: 'x.json' },
    );
    expect(md).toContain('## Demo module\n\nvalue 42');
    expect(md).toMatch(/^\| demo goal holds \| met \| by construction \|$/m);
    expect(md).toMatch(/^\| loopback \| direct \| 1 \| 50 \| 60 \| 70 \|/m);
  });
});

describe('CPU per GiB over rounds', () => {
  it('reports each process median and min-max over rounds, and judges issue 18 goal 2 per round', async () => {
    const { registerBuiltinGoals } = await import('../bench/report/goals.js');
    const { renderReport } = await import('../bench/report/markdown.js');
    registerBuiltinGoals();
    const GIB = 1024 ** 3;
    // CPU seconds per GiB moved, per round: hub, device proxy, service proxy.
    const perRound = [
      [1.0, 1.9, 1.8],
      [1.4, 1.5, 1.6], // the hub over its bound in this round
      [0.9, 1.7, 1.9],
    ];
    const records = perRound.map(([hub, dev, svc], i) => ({
      path: 'devstreams',
      placement: 'loopback',
      scenario: 'bulk-1',
      round: i + 1,
      metrics: { MBps: 200 },
      usageBytes: 2 * GIB,
      usage: [
        { role: 'hub', cpuSeconds: (hub as number) * 2, peakRssBytes: 100e6 },
        { role: 'device proxy', cpuSeconds: (dev as number) * 2, peakRssBytes: 110e6 + i * 1e6 },
        { role: 'service proxy', cpuSeconds: (svc as number) * 2, peakRssBytes: 120e6 },
      ],
    }));
    const md = renderReport(
      fakeResults({
        paths: [{ id: 'devstreams', title: 'tunnel' }],
        scenarios: ['bulk-1'],
        records,
        modules: {},
      }),
      { charts: {}, jsonRel: 'x.json' },
    );
    expect(md).toMatch(/^\| bulk-1 \| devstreams \| hub \| 3 \| 1\.00 \| 0\.90-1\.40 \| - \| 100\.0 \| 100\.0 \|$/m);
    expect(md).toMatch(/^\| bulk-1 \| devstreams \| device proxy \| 3 \| 1\.70 \| 1\.50-1\.90 \| - \| 111\.0 \| 112\.0 \|$/m);
    expect(md).toMatch(/^\| bulk-1 \| devstreams \| service proxy \| 3 \| 1\.80 \| 1\.60-1\.90 \|/m);
    // Every median within bound; the hub's 1.4 breaks round 2.
    expect(md).toMatch(/^\| CPU per GiB, sealed loopback bulk-1 \(iperf3\).*\| met, 2 of 3 rounds \| .*hub 1\.00 \(0\.90-1\.40\) <= 1\.1/m);
  });
});

describe('mux vs yamux in paired rounds', () => {
  it('runs mux and yamux back to back, each first in every other round, and takes the ratio per round', async () => {
    const { roundOrder, roundRatios } = await import('../bench/standalone/mux-throughput.js');
    const cases = (['raw', 'mux', 'yamux'] as const).flatMap((impl) => [1, 8].map((streams) => ({ impl, streams })));
    const order = (rep: number): string[] => roundOrder(cases, rep).map((c) => `${c.impl}x${c.streams}`);
    expect(order(0)).toEqual(['rawx1', 'muxx1', 'yamuxx1', 'rawx8', 'muxx8', 'yamuxx8']);
    expect(order(1)).toEqual(['yamuxx1', 'muxx1', 'rawx1', 'yamuxx8', 'muxx8', 'rawx8']);
    const run = (mbps: number) => ({ bytes: 1, seconds: 1, mbps, senderCpuMsPerMB: 0, peerCpuMsPerMB: 0 });
    const result = [
      { impl: 'mux' as const, streams: 1, runs: [run(100), run(300)], medianMBps: 0, medianSenderCpuMsPerMB: 0, medianPeerCpuMsPerMB: 0 },
      { impl: 'yamux' as const, streams: 1, runs: [run(200), run(150)], medianMBps: 0, medianSenderCpuMsPerMB: 0, medianPeerCpuMsPerMB: 0 },
    ];
    expect(roundRatios(result, 1)).toEqual([0.5, 2]);
    expect(roundRatios(result, 8)).toEqual([]);
  });
});

/** One loopback record of a made-up run. */
function rec(scenario: string, path: string, round: number, metrics: Record<string, number>): RunRecord {
  return { scenario, path, round, placement: 'loopback', metrics };
}

/** The report of a made-up run of these paths, scenarios and records, with the built-in goals. */
async function goalsReport(paths: readonly string[], scenarios: readonly string[], records: RunRecord[]): Promise<string> {
  const { registerBuiltinGoals } = await import('../bench/report/goals.js');
  const { renderReport } = await import('../bench/report/markdown.js');
  registerBuiltinGoals();
  return renderReport(fakeResults({ paths: paths.map((id) => ({ id, title: id })), scenarios: [...scenarios], records, modules: {} }), {
    charts: {},
    jsonRel: 'x.json',
  });
}

describe('issue 19 goals 1a and 1b', () => {
  it('judges the fixed-load row against direct per round, and the saturating row against OpenSSH per round', async () => {
    const records = [
      // Round 1: +1.5 ms over direct, 95 % kept: holds. Round 2: +2.5 ms: does not. Round 3: +1 ms but 80 % kept: does not.
      rec('interactive-100', 'direct', 1, { p99_us: 300 }),
      rec('interactive-100', 'devstreams', 1, { p99_us: 1800, kept_pct: 95 }),
      rec('interactive-100', 'direct', 2, { p99_us: 200 }),
      rec('interactive-100', 'devstreams', 2, { p99_us: 2700, kept_pct: 99 }),
      rec('interactive-100', 'direct', 3, { p99_us: 250 }),
      rec('interactive-100', 'devstreams', 3, { p99_us: 1250, kept_pct: 80 }),
      // Saturating: below OpenSSH in rounds 1 and 3.
      rec('interactive', 'openssh', 1, { p99_us: 10_000 }),
      rec('interactive', 'devstreams', 1, { p99_us: 8_000 }),
      rec('interactive', 'openssh', 2, { p99_us: 10_000 }),
      rec('interactive', 'devstreams', 2, { p99_us: 12_000 }),
      rec('interactive', 'openssh', 3, { p99_us: 10_000 }),
      rec('interactive', 'devstreams', 3, { p99_us: 9_000 }),
    ];
    const md = await goalsReport(['direct', 'devstreams', 'openssh'], ['interactive', 'interactive-100'], records);
    // Medians: +1.50 ms over direct, 95 % kept: met; held in round 1 only.
    expect(md).toMatch(/^\| Interactive p99 beside a fixed 100 MB\/s .*\| met, 1 of 3 rounds \| p99 over direct's: median \+1\.50 ms/m);
    // Ratios 0.8, 1.2, 0.9: median 0.90x, below OpenSSH in 2 of 3 rounds.
    expect(md).toMatch(
      /^\| Interactive p99 under saturating iperf3 bulk below OpenSSH .*\| met, 2 of 3 rounds \| .*median 0\.90x \(0\.80x to 1\.20x\)/m,
    );
  });
});

describe('issue 19 goals 2, 3 and 4 against OpenSSH, with the three-relay floor beside round trips and HTTP', () => {
  it('judges round trip, first byte and HTTP per round against OpenSSH, and says whether the floor would meet each', async () => {
    const records = [1, 2, 3].flatMap((round) => [
      rec('rtt', 'direct', round, { p50_us: 30 }),
      rec('rtt', 'openssh', round, { p50_us: 150 }),
      // 120, 160, 180 us: below OpenSSH in round 1 only; the relays (130 us) in every round.
      rec('rtt', 'devstreams', round, { p50_us: [120, 160, 180][round - 1] as number }),
      rec('rtt', 'node-relays', round, { p50_us: 130 }),
      rec('ttfb', 'openssh', round, { p50_ms: 1, p99_ms: 2 }),
      rec('ttfb', 'devstreams', round, { p50_ms: 2, p99_ms: [2.5, 4, 5][round - 1] as number }),
      rec('http', 'openssh', round, { rps: 10_000 }),
      // 11,000, 9,000, 10,500 req/s: median 1.05x, at or above OpenSSH in 2 of 3 rounds.
      rec('http', 'devstreams', round, { rps: [11_000, 9_000, 10_500][round - 1] as number, errors: 0 }),
      rec('http', 'node-relays', round, { rps: 9_500 }),
    ]);
    const md = await goalsReport(['direct', 'devstreams', 'openssh', 'node-relays'], ['rtt', 'ttfb', 'http'], records);
    expect(md).toMatch(
      /^\| 64-byte round trip p50 on loopback below OpenSSH .*\| \*\*not met\*\*, 1 of 3 rounds \| median 1\.07x OpenSSH .*three Node pipe\(\) relays: median 0\.87x OpenSSH, would meet\) \|$/m,
    );
    // The +150 us row shows both references: OpenSSH (+120 us) and the relays (+100 us).
    expect(md).toMatch(
      /^\| 64-byte round trip on loopback within 150 us .*OpenSSH: median \+120 us, would meet; three Node pipe\(\) relays: median \+100 us, would meet\) \|$/m,
    );
    expect(md).toMatch(
      /^\| Time to first byte .* on loopback: p50 below OpenSSH .*\| \*\*not met\*\*, 0 of 3 rounds \| median 2\.00x OpenSSH \(rounds 2\.00x OpenSSH to 2\.00x OpenSSH\); held in 0 of 3 rounds; median round: 2\.00 ms vs OpenSSH 1\.00 ms \|$/m,
    );
    expect(md).toMatch(/^\| Time to first byte .* on loopback: p99 <= 3 ms \| \*\*not met\*\*, 1 of 3 rounds \| median 4\.00 ms /m);
    expect(md).toMatch(
      /^\| HTTP requests\/s .* >= 1\.0x OpenSSH .*\| met, 2 of 3 rounds \| median 1\.05x OpenSSH .*three Node pipe\(\) relays: median 0\.95x OpenSSH, would not meet\) \|$/m,
    );
  });
});

describe('the HTTP goal and failed requests', () => {
  it('does not count a round whose requests failed, however many per second went', async () => {
    const records = [1, 2, 3].flatMap((round) => [
      rec('http', 'openssh', round, { rps: 10_000, errors: 0 }),
      rec('http', 'devstreams', round, { rps: 12_000, errors: round === 1 ? 0 : 5 }),
    ]);
    const md = await goalsReport(['direct', 'devstreams', 'openssh'], ['http'], records);
    expect(md).toMatch(/^\| HTTP requests\/s .*\| \*\*not met\*\*, 1 of 3 rounds \| median 0\.00x OpenSSH .*with 5 errors/m);
  });
});
