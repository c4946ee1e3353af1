// Entry of `npm run bench`: starts the targets, runs every selected scenario through every
// available path at every selected placement, prints live progress to stderr, and writes
// RESULTS.md, SVG charts and the raw JSON. See bench/README.md.
import { Command, Option } from 'commander';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FULL_BUDGET, PATH_STOP_TIMEOUT_MS, QUICK_BUDGET, type BenchBudget } from './config.js';
import { withDeadline } from './deadline.js';
import { loadResults, renderCompare } from './compare.js';
import { machineInfo } from './machine.js';
import './modules.js';
import { PATHS, type BenchPath, type RunningPath } from './paths/index.js';
import { lossUnavailableReason } from './netns.js';
import { hasLoss, PLACEMENTS, type Placement } from './placements.js';
import { iperf3Unavailable, startIperf3Server } from './iperf3.js';
import { benchScript, freePort, spawnNodeReady, type Child } from './procs.js';
import { writeCharts } from './report/charts.js';
import { registerBuiltinGoals } from './report/goals.js';
import { renderReport } from './report/markdown.js';
import { allModules } from './report/registry.js';
import type { BenchResults, RunRecord } from './results.js';
import { SCENARIOS, type Scenario } from './scenarios/index.js';
import { collectModuleBounded, errorText, moduleError, runScenarioBounded } from './steps.js';
import type { TargetPorts } from './targets.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Placements of `--quick` unless --placements says otherwise: the pure cost and one capped long link. */
export const QUICK_PLACEMENTS = ['loopback', 'intercontinental'];
/** Where a full run writes: the committed report of record and its charts and raw JSON. */
const FULL_OUT = path.join(REPO_ROOT, 'RESULTS.md');
const FULL_JSON_DIR = path.join(REPO_ROOT, 'bench', 'results');
/** Where `--quick` writes by default (gitignored), so a smoke run never touches the committed report. */
const QUICK_OUT = path.join(REPO_ROOT, 'RESULTS-quick.md');
const QUICK_JSON_DIR = path.join(REPO_ROOT, 'bench', 'results', 'quick');

interface Options {
  quick: boolean;
  scenarios?: string;
  placements?: string;
  paths?: string;
  out?: string;
  json?: string;
  charts: boolean;
  rounds?: number;
  compare?: string;
}

/** Bad command-line input: printed as one line, exit code 2. */
class BenchUsageError extends Error {}

function pickList<T extends { id: string }>(all: readonly T[], csv: string | undefined, what: string): T[] {
  if (csv === undefined) return [...all];
  const ids = csv
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = ids.filter((id) => !all.some((x) => x.id === id));
  if (unknown.length > 0) throw new BenchUsageError(`unknown ${what}: ${unknown.join(', ')} (known: ${all.map((x) => x.id).join(', ')})`);
  return all.filter((x) => ids.includes(x.id));
}

class Progress {
  private readonly t0 = Date.now();
  step = 0;
  constructor(public total: number) {}
  private stamp(): string {
    const s = Math.round((Date.now() - this.t0) / 1000);
    return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
  }
  line(text: string): void {
    process.stderr.write(`[${String(this.step).padStart(String(this.total).length)}/${this.total} ${this.stamp()}] ${text}\n`);
  }
}

/** A duration in ms, read at a glance: `85 us`, `1.23 ms`, `152 ms`. */
export function formatMs(ms: number): string {
  if (ms < 1) return `${Math.round(ms * 1000)} us`;
  if (ms < 10) return `${ms.toFixed(2)} ms`;
  if (ms < 100) return `${ms.toFixed(1)} ms`;
  return `${ms.toFixed(0)} ms`;
}

/** One progress figure: durations (metrics in _us or _ms) in formatMs, the rest as the column prints it. */
function progressFigure(metricId: string, label: string, v: number, digits: number): string {
  const unit = /_(us|ms)$/.exec(metricId)?.[1];
  if (unit === undefined) return `${v.toFixed(digits)} ${label}`;
  const name = label.replace(/ (us|ms)$/, '');
  return `${name} ${formatMs(unit === 'us' ? v / 1000 : v)}`;
}

function summarize(s: Scenario, rec: RunRecord): string {
  if (rec.error !== undefined) return `error: ${rec.error}`;
  const parts = s.columns
    .filter((c) => rec.metrics[c.metric] !== undefined && Number.isFinite(rec.metrics[c.metric]))
    .map((c) => progressFigure(c.metric, c.label, rec.metrics[c.metric] as number, c.digits));
  return `${parts.join(', ')}${rec.partial === true ? ' (partial)' : ''}`;
}

/** Scenarios a path runs at a placement: the scenario's own placements, narrowed by the path's `only`. */
function applicableScenarios(p: BenchPath, placement: Placement, scenarios: readonly Scenario[]): Scenario[] {
  if (p.only?.placements !== undefined && !p.only.placements.includes(placement.id)) return [];
  return scenarios.filter(
    (s) => (s.placements === 'all' || placement.loopback) && (p.only?.scenarios === undefined || p.only.scenarios.includes(s.id)),
  );
}

/** Rounds of a scenario at a placement (paired: every path once per round). */
function roundsAt(placement: Placement, budget: BenchBudget): number {
  return placement.loopback ? budget.rounds : budget.roundsEmulated;
}

/**
 * One placement: starts every path that runs something there, then runs each scenario in paired
 * rounds (A B C, A B C, ...), so that the paths of one round share the machine's state of that
 * moment and a ratio taken within a round compares like with like. Stops the paths at the end.
 */
async function runPlacement(
  paths: readonly BenchPath[],
  placement: Placement,
  scenarios: readonly Scenario[],
  targets: TargetPorts,
  budget: BenchBudget,
  progress: Progress,
  records: RunRecord[],
  tmpDir: string,
): Promise<void> {
  const started: Array<{ p: BenchPath; running: RunningPath }> = [];
  try {
    for (const p of paths) {
      const applicable = applicableScenarios(p, placement, scenarios);
      if (applicable.length === 0) continue;
      try {
        progress.line(`${p.id} · ${placement.id}: starting path`);
        const running = await withDeadline(`starting path ${p.id} · ${placement.id}`, budget.pathStartTimeoutMs, (signal) => {
          const starting = p.start({ targets, placement, tmpDir, log: (l) => progress.line(l) });
          // A start that finishes after its bound still gets its processes stopped.
          signal.addEventListener('abort', () => void starting.then((r) => r.stop()).catch(() => undefined), { once: true });
          return starting;
        });
        started.push({ p, running });
      } catch (err) {
        const msg = errorText(err);
        for (const s of applicable) {
          progress.step += roundsAt(placement, budget);
          records.push({ path: p.id, placement: placement.id, scenario: s.id, round: 1, metrics: {}, error: `path did not start: ${msg}` });
        }
        progress.line(`${p.id} · ${placement.id}: path did not start: ${msg}`);
      }
    }
    const rounds = roundsAt(placement, budget);
    for (const s of scenarios) {
      const here = started.filter(({ p }) => applicableScenarios(p, placement, [s]).length > 0);
      for (let round = 1; round <= rounds; round++) {
        for (const { p, running } of here) {
          progress.step += 1;
          const label = `${p.id} · ${placement.id} · ${s.id} · round ${round}/${rounds}`;
          progress.line(`${label}: running`);
          const rec = await runScenarioBounded(
            s,
            { pathId: p.id, path: running, placement, budget, progress: (d) => progress.line(`${label}: ${d}`) },
            round,
            budget.scenarioRunTimeoutMs,
          );
          records.push(rec);
          progress.line(`${label}: ${summarize(s, rec)}`);
        }
      }
    }
  } finally {
    for (const { p, running } of started) await stopBounded(`stopping path ${p.id} · ${placement.id}`, () => running.stop(), progress);
  }
}

/** Stops a path or target within PATH_STOP_TIMEOUT_MS; past it, says so and goes on. */
async function stopBounded(name: string, stop: () => Promise<void>, progress: Progress): Promise<void> {
  try {
    await withDeadline(name, PATH_STOP_TIMEOUT_MS, stop);
  } catch (err) {
    progress.line(`${name}: ${errorText(err)}`);
  }
}

export async function main(argv: readonly string[]): Promise<BenchResults> {
  const program = new Command()
    .name('npm run bench --')
    .description('Latency tax and throughput of the devstreams tunnel against direct TCP and OpenSSH -L, across placements.')
    .option('--quick', 'CI smoke: small sizes, few samples, placements loopback + intercontinental (about a minute)', false)
    .option(
      '--scenarios <ids>',
      `comma-separated scenarios and report modules (${[...SCENARIOS.map((s) => s.id), ...allModules().map((m) => m.id)].join(', ')})`,
    )
    .option('--placements <ids>', `comma-separated placements (${PLACEMENTS.map((p) => p.id).join(', ')})`)
    .option('--paths <ids>', `comma-separated paths (${PATHS.map((p) => p.id).join(', ')})`)
    .option(
      '--out <file>',
      `report file (default ${path.relative(REPO_ROOT, FULL_OUT)}; with --quick ${path.relative(REPO_ROOT, QUICK_OUT)})`,
    )
    .option(
      '--json <dir>',
      `directory for raw JSON and charts (default ${path.relative(REPO_ROOT, FULL_JSON_DIR)}; with --quick ${path.relative(REPO_ROOT, QUICK_JSON_DIR)})`,
    )
    .option('--rounds <n>', 'paired rounds per scenario on every placement (default: 5 loopback / 3 emulated; quick 2 / 1)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1) throw new BenchUsageError(`--rounds wants a whole number >= 1, got ${v}`);
      return n;
    })
    .option(
      '--compare <results.json>',
      'print this run against an earlier raw result row by row, with both spreads (also added to the report)',
    )
    .addOption(new Option('--no-charts', 'skip drawing SVG charts'))
    .exitOverride();
  program.parse([...argv], { from: 'user' });
  const opts = program.opts<Options>();
  const base = opts.quick ? QUICK_BUDGET : FULL_BUDGET;
  const budget: BenchBudget = opts.rounds === undefined ? base : { ...base, rounds: opts.rounds, roundsEmulated: opts.rounds };
  registerBuiltinGoals();
  // Read the earlier result first: a wrong path should fail before minutes of measuring.
  const earlier = opts.compare === undefined ? undefined : loadResults(path.resolve(opts.compare));

  const moduleIds = allModules().map((m) => m.id);
  const wanted = opts.scenarios
    ?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const picked = pickList(SCENARIOS, wanted?.filter((id) => !moduleIds.includes(id)).join(','), 'scenario');
  const skippedScenarios: Record<string, string> = {};
  const scenarios: Scenario[] = [];
  for (const s of picked) {
    const why = await s.unavailableReason?.();
    if (why === undefined) scenarios.push(s);
    else {
      skippedScenarios[s.id] = why;
      process.stderr.write(`skipping scenario ${s.id}: ${why}\n`);
    }
  }
  const modules = allModules().filter((m) => m.collect !== undefined && (wanted === undefined || wanted.includes(m.id)));
  const placementCsv = opts.placements ?? (opts.quick ? QUICK_PLACEMENTS.join(',') : undefined);
  const chosen = pickList(PLACEMENTS, placementCsv, 'placement');
  const skippedPlacements: Record<string, string> = {};
  const placements: Placement[] = [];
  for (const p of chosen) {
    const why = hasLoss(p) ? await lossUnavailableReason() : undefined;
    if (why === undefined) placements.push(p);
    else {
      skippedPlacements[p.id] = why;
      process.stderr.write(`skipping placement ${p.id}: ${why}\n`);
    }
  }
  const paths = pickList(PATHS, opts.paths, 'path');

  const results: BenchResults = {
    version: 1,
    startedAt: new Date().toISOString(),
    finishedAt: '',
    quick: opts.quick,
    argv: [...argv],
    machine: await machineInfo(),
    placements,
    paths: [],
    scenarios: picked.map((s) => s.id),
    records: [],
    skippedScenarios,
    ...(Object.keys(skippedPlacements).length > 0 ? { skippedPlacements } : {}),
    modules: {},
  };
  const runnable: BenchPath[] = [];
  for (const p of paths) {
    const why = await p.unavailableReason();
    results.paths.push({ id: p.id, title: p.title, ...(why === undefined ? {} : { skipped: why }) });
    if (why === undefined) runnable.push(p);
    else process.stderr.write(`skipping path ${p.id}: ${why}\n`);
  }

  const total =
    runnable.reduce(
      (n, p) => n + placements.reduce((m, pl) => m + roundsAt(pl, budget) * applicableScenarios(p, pl, scenarios).length, 0),
      0,
    ) + modules.length;
  const progress = new Progress(total);
  progress.line(
    `bench ${opts.quick ? 'quick' : 'full'}: ${runnable.map((p) => p.id).join(', ')} x ${placements.map((p) => p.id).join(', ')} x ${scenarios.map((s) => s.id).join(', ') || '(no path scenarios)'}${modules.length > 0 ? ` + modules ${modules.map((m) => m.id).join(', ')}` : ''}`,
  );

  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'devstreams-bench-'));
  const targets: Child[] = [];
  try {
    const sink = await spawnNodeReady<{ ports: Partial<TargetPorts> }>(benchScript('procs/targets-main.js'), ['sink']);
    targets.push(sink.child);
    const rest = await spawnNodeReady<{ ports: Partial<TargetPorts> }>(benchScript('procs/targets-main.js'), ['echo,http']);
    targets.push(rest.child);
    // iperf3 serves the bulk scenarios; without it they are skipped and its port stays unused.
    let iperfPort = await freePort();
    if ((await iperf3Unavailable()) === undefined) {
      const srv = await startIperf3Server();
      targets.push(srv.child);
      iperfPort = srv.port;
    }
    const ports = { ...sink.ready.ports, ...rest.ready.ports, iperf: iperfPort } as TargetPorts;
    for (const placement of placements)
      await runPlacement(runnable, placement, scenarios, ports, budget, progress, results.records, tmpDir);
    for (const m of modules) {
      progress.step += 1;
      progress.line(`module ${m.id}: running`);
      const data = await collectModuleBounded(
        m,
        { quick: opts.quick, budget, progress: (d) => progress.line(`module ${m.id}: ${d}`) },
        budget.moduleTimeoutMs,
      );
      results.modules[m.id] = data;
      const failed = moduleError(data);
      if (failed !== undefined) progress.line(`module ${m.id}: failed: ${failed}`);
    }
  } finally {
    for (const t of targets) await stopBounded(`stopping target ${t.pid}`, () => t.stop(), progress);
    fs.rmSync(tmpDir, { recursive: true, force: true });
  }
  results.finishedAt = new Date().toISOString();

  const outFile = path.resolve(opts.out ?? (opts.quick ? QUICK_OUT : FULL_OUT));
  const jsonDir = path.resolve(opts.json ?? (opts.quick ? QUICK_JSON_DIR : FULL_JSON_DIR));
  fs.mkdirSync(jsonDir, { recursive: true });
  const jsonFile = path.join(jsonDir, opts.quick ? 'results-quick.json' : 'results.json');
  fs.writeFileSync(jsonFile, `${JSON.stringify(results, null, 2)}\n`);
  const rel = (f: string): string => path.relative(path.dirname(outFile), f).split(path.sep).join('/');
  const charts: Record<string, string> = {};
  if (opts.charts) {
    try {
      for (const [id, file] of Object.entries(await writeCharts(results, jsonDir))) charts[id] = rel(file);
    } catch (err) {
      process.stderr.write(`charts not drawn: ${(err as Error).message}\n`);
    }
  }
  fs.mkdirSync(path.dirname(outFile), { recursive: true });
  let report = renderReport(results, { charts, jsonRel: rel(jsonFile) });
  if (earlier !== undefined && opts.compare !== undefined) {
    const table = renderCompare(results, earlier, path.basename(opts.compare));
    process.stdout.write(`${table}\n`);
    report += `\n${table}`;
  }
  fs.writeFileSync(outFile, report);
  progress.line(`wrote ${outFile} and ${jsonFile}`);
  return results;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (err: unknown) => {
      const e = err as { code?: string; message?: string };
      if (e.code?.startsWith('commander.') === true)
        process.exit(e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : 2);
      process.stderr.write(`bench failed: ${e.message ?? String(err)}\n`);
      process.exit(err instanceof BenchUsageError ? 2 : 1);
    },
  );
}
