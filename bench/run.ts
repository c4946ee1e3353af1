// Entry of `npm run bench`: starts the targets, runs every selected scenario through every
// available path at every selected placement, prints live progress to stderr, and writes
// RESULTS.md, SVG charts and the raw JSON. See bench/README.md.
import { Command, Option } from 'commander';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FULL_BUDGET, QUICK_BUDGET, type BenchBudget } from './config.js';
import { machineInfo } from './machine.js';
import './modules.js';
import { PATHS, type BenchPath, type RunningPath } from './paths/index.js';
import { PLACEMENTS, type Placement } from './placements.js';
import { benchScript, spawnNodeReady, type Child } from './procs.js';
import { writeCharts } from './report/charts.js';
import { registerBuiltinGoals } from './report/goals.js';
import { renderReport } from './report/markdown.js';
import { allModules } from './report/registry.js';
import type { BenchResults, RunRecord } from './results.js';
import { SCENARIOS, type Scenario } from './scenarios/index.js';
import type { TargetPorts } from './targets.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** Placements of `--quick` unless --placements says otherwise: the pure cost and one capped long link. */
export const QUICK_PLACEMENTS = ['loopback', 'intercontinental'];

interface Options {
  quick: boolean;
  scenarios?: string;
  placements?: string;
  paths?: string;
  out: string;
  json: string;
  charts: boolean;
}

/** Bad command-line input: printed as one line, exit code 2. */
class BenchUsageError extends Error {}

function pickList<T extends { id: string }>(all: readonly T[], csv: string | undefined, what: string): T[] {
  if (csv === undefined) return [...all];
  const ids = csv.split(',').map((s) => s.trim()).filter(Boolean);
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

function summarize(s: Scenario, rec: RunRecord): string {
  if (rec.error !== undefined) return `error: ${rec.error}`;
  const parts = s.columns
    .filter((c) => rec.metrics[c.metric] !== undefined && Number.isFinite(rec.metrics[c.metric]))
    .map((c) => `${(rec.metrics[c.metric] as number).toFixed(c.digits)} ${c.label}`);
  return `${parts.join(', ')}${rec.partial === true ? ' (partial)' : ''}`;
}

/** Scenarios a path runs at a placement: the scenario's own placements, narrowed by the path's `only`. */
function applicableScenarios(p: BenchPath, placement: Placement, scenarios: readonly Scenario[]): Scenario[] {
  if (p.only?.placements !== undefined && !p.only.placements.includes(placement.id)) return [];
  return scenarios.filter((s) => (s.placements === 'all' || placement.loopback) && (p.only?.scenarios === undefined || p.only.scenarios.includes(s.id)));
}

async function runPathAtPlacement(
  p: BenchPath,
  placement: Placement,
  scenarios: readonly Scenario[],
  targets: TargetPorts,
  budget: BenchBudget,
  progress: Progress,
  records: RunRecord[],
  tmpDir: string,
): Promise<void> {
  const applicable = applicableScenarios(p, placement, scenarios);
  if (applicable.length === 0) return;
  let running: RunningPath;
  try {
    progress.line(`${p.id} · ${placement.id}: starting path`);
    running = await p.start({ targets, placement, tmpDir, log: (l) => progress.line(l) });
  } catch (err) {
    const msg = (err as Error).message.split('\n')[0] ?? 'failed';
    for (const s of applicable) {
      progress.step += 1;
      records.push({ path: p.id, placement: placement.id, scenario: s.id, metrics: {}, error: `path did not start: ${msg}` });
    }
    progress.line(`${p.id} · ${placement.id}: path did not start: ${msg}`);
    return;
  }
  try {
    for (const s of applicable) {
      progress.step += 1;
      const label = `${p.id} · ${placement.id} · ${s.id}`;
      progress.line(`${label}: running`);
      let rec: RunRecord;
      try {
        const o = await s.run({ pathId: p.id, path: running, placement, budget, progress: (d) => progress.line(`${label}: ${d}`) });
        rec = { path: p.id, placement: placement.id, scenario: s.id, ...o };
      } catch (err) {
        rec = { path: p.id, placement: placement.id, scenario: s.id, metrics: {}, error: (err as Error).message };
      }
      records.push(rec);
      progress.line(`${label}: ${summarize(s, rec)}`);
    }
  } finally {
    await running.stop();
  }
}

export async function main(argv: readonly string[]): Promise<BenchResults> {
  const program = new Command()
    .name('npm run bench --')
    .description('Latency tax and throughput of the devstreams tunnel against direct TCP and OpenSSH -L, across placements.')
    .option('--quick', 'CI smoke: small sizes, few samples, placements loopback + intercontinental (about a minute)', false)
    .option('--scenarios <ids>', `comma-separated scenarios and report modules (${[...SCENARIOS.map((s) => s.id), ...allModules().map((m) => m.id)].join(', ')})`)
    .option('--placements <ids>', `comma-separated placements (${PLACEMENTS.map((p) => p.id).join(', ')})`)
    .option('--paths <ids>', `comma-separated paths (${PATHS.map((p) => p.id).join(', ')})`)
    .option('--out <file>', 'report file', path.join(REPO_ROOT, 'RESULTS.md'))
    .option('--json <dir>', 'directory for raw JSON and charts', path.join(REPO_ROOT, 'bench', 'results'))
    .addOption(new Option('--no-charts', 'skip drawing SVG charts'))
    .exitOverride();
  program.parse([...argv], { from: 'user' });
  const opts = program.opts<Options>();
  const budget = opts.quick ? QUICK_BUDGET : FULL_BUDGET;
  registerBuiltinGoals();

  const moduleIds = allModules().map((m) => m.id);
  const wanted = opts.scenarios?.split(',').map((s) => s.trim()).filter(Boolean);
  const scenarios = pickList(SCENARIOS, wanted?.filter((id) => !moduleIds.includes(id)).join(','), 'scenario');
  const modules = allModules().filter((m) => m.collect !== undefined && (wanted === undefined || wanted.includes(m.id)));
  const placements = pickList(PLACEMENTS, opts.placements ?? (opts.quick ? QUICK_PLACEMENTS.join(',') : undefined), 'placement');
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
    scenarios: scenarios.map((s) => s.id),
    records: [],
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
    runnable.reduce((n, p) => n + placements.reduce((m, pl) => m + applicableScenarios(p, pl, scenarios).length, 0), 0) + modules.length;
  const progress = new Progress(total);
  progress.line(`bench ${opts.quick ? 'quick' : 'full'}: ${runnable.map((p) => p.id).join(', ')} x ${placements.map((p) => p.id).join(', ')} x ${scenarios.map((s) => s.id).join(', ') || '(no path scenarios)'}${modules.length > 0 ? ` + modules ${modules.map((m) => m.id).join(', ')}` : ''}`);

  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'devstreams-bench-'));
  const targets: Child[] = [];
  try {
    const sink = await spawnNodeReady<{ ports: Partial<TargetPorts> }>(benchScript('procs/targets-main.js'), ['sink']);
    targets.push(sink.child);
    const rest = await spawnNodeReady<{ ports: Partial<TargetPorts> }>(benchScript('procs/targets-main.js'), ['echo,http']);
    targets.push(rest.child);
    const ports = { ...sink.ready.ports, ...rest.ready.ports } as TargetPorts;
    for (const placement of placements) {
      for (const p of runnable) await runPathAtPlacement(p, placement, scenarios, ports, budget, progress, results.records, tmpDir);
    }
    for (const m of modules) {
      progress.step += 1;
      progress.line(`module ${m.id}: running`);
      try {
        results.modules[m.id] = await m.collect?.({ quick: opts.quick, budget, progress: (d) => progress.line(`module ${m.id}: ${d}`) });
      } catch (err) {
        results.modules[m.id] = { error: (err as Error).message };
      }
    }
  } finally {
    for (const t of targets) await t.stop();
    fs.rmSync(tmpDir, { recursive: true, force: true });
  }
  results.finishedAt = new Date().toISOString();

  const outFile = path.resolve(opts.out);
  const jsonDir = path.resolve(opts.json);
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
  fs.writeFileSync(outFile, renderReport(results, { charts, jsonRel: rel(jsonFile) }));
  progress.line(`wrote ${outFile} and ${jsonFile}`);
  return results;
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (err: unknown) => {
      const e = err as { code?: string; message?: string };
      if (e.code?.startsWith('commander.') === true) process.exit(e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : 2);
      process.stderr.write(`bench failed: ${e.message ?? String(err)}\n`);
      process.exit(err instanceof BenchUsageError ? 2 : 1);
    },
  );
}
