// Renders RESULTS.md from a run's results: goals, machine, placements, one table per scenario with
// ratio columns against direct TCP and OpenSSH, per-placement summary, resources, charts, modules.
import { EMULATOR_PATH_ID } from '../paths/emulator.js';
import { directCapacityMBps, directRttMs, relayedCapacityMBps, relayedRttMs, type LegSpec } from '../placements.js';
import {
  cpuSpread,
  findRecords,
  kernelPerGiB,
  metric,
  metricSpread,
  roundRatios,
  spreadOf,
  type BenchResults,
  type Spread,
} from '../results.js';
import { SCENARIOS } from '../scenarios/index.js';
import { moduleError } from '../steps.js';
import { allGoals, allModules } from './registry.js';
import { markdownTable } from '../markdown-table.js';

export interface ReportOptions {
  /** Chart files relative to the report's directory, by chart id. */
  readonly charts: Readonly<Record<string, string>>;
  /** JSON results file relative to the report's directory. */
  readonly jsonRel: string;
}

const NA = '-';
const GIB = 1024 ** 3;

function fmt(v: number | undefined, digits: number): string {
  if (v === undefined || !Number.isFinite(v)) return NA;
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function legText(l: LegSpec): string {
  if (l.oneWayMs === 0 && l.mbps === 0) return 'none';
  const bw = l.mbps > 0 ? `, ${l.mbps} Mbit/s` : '';
  const jit = l.jitterMs > 0 ? ` +0-${l.jitterMs} ms jitter` : '';
  const loss = (l.lossPercent ?? 0) > 0 ? `, ${l.lossPercent} % loss each way` : '';
  return `${(2 * l.oneWayMs).toFixed(1)} ms RTT${jit}${bw}${loss}`;
}

/** Median of the per-round ratios a/b, with their range: `0.83x (0.79-0.88)`. */
function ratioCell(r: BenchResults, scenario: string, placement: string, key: string, a: string, b: string): string {
  const s = spreadOf(roundRatios(r, scenario, placement, key, a, b));
  if (s === undefined) return NA;
  return s.n > 1 ? `${s.median.toFixed(2)}x (${s.min.toFixed(2)}-${s.max.toFixed(2)})` : `${s.median.toFixed(2)}x`;
}

/** A spread as `min-max`, with the digits of its column. */
function rangeCell(s: Spread | undefined, digits: number): string {
  if (s === undefined) return NA;
  return `${fmt(s.min, digits)}-${fmt(s.max, digits)}`;
}

function goalsSection(r: BenchResults): string {
  const rows = allGoals().map((g) => {
    const v = g.evaluate(r);
    const status = v.status === 'met' ? 'met' : v.status === 'not met' ? '**not met**' : 'not measured';
    return [g.text, v.rounds === undefined ? status : `${status}, ${v.rounds} rounds`, v.detail];
  });
  return (
    '## Goals\n\n' +
    'Each goal is judged on the median over paired rounds of its per-round value (a ratio or difference between paths ' +
    'run side by side in that round); the status says in how many rounds the goal held on its own.\n\n' +
    `${markdownTable(['goal', 'status', 'measured'], rows)}\n`
  );
}

function machineSection(r: BenchResults): string {
  const m = r.machine;
  const rows = [
    ['CPU', `${m.cpuModel} x ${m.cpuCount}`],
    ['RAM', `${(m.ramBytes / GIB).toFixed(1)} GiB`],
    ['OS', m.os],
    ['Node', m.node],
    ['OpenSSH', m.openssh ?? 'not installed'],
    ['git commit', m.gitCommit ?? 'unknown'],
    ['date', `${r.startedAt} to ${r.finishedAt}`],
    ['mode', r.quick ? 'quick (CI smoke: small sizes, few samples)' : 'full'],
    ['command', `npm run bench --${r.argv.length > 0 ? ` ${r.argv.join(' ')}` : ''}`],
  ];
  return `## Machine\n\n${markdownTable(['', ''], rows)}\n`;
}

function pathsSection(r: BenchResults): string {
  const rows = r.paths.map((p) => [p.id, p.title, p.skipped === undefined ? 'ran' : `skipped: ${p.skipped}`]);
  return `## Paths\n\n${markdownTable(['path', 'what', 'status'], rows)}\n`;
}

function placementsSection(r: BenchResults): string {
  const rows = r.placements.map((p) => [
    p.id,
    legText(p.deviceHub),
    legText(p.hubService),
    legText(p.deviceService),
    fmt(relayedRttMs(p), 1),
    fmt(directRttMs(p), 1),
    p.citation,
  ]);
  return (
    '## Placements\n\nEach leg is emulated in user space by `bench/link-emulator.ts` (one-way delay, jitter that keeps order, ' +
    'bandwidth cap, queue bounded to one bandwidth-delay product). Relayed paths (tunnel, OpenSSH, emulator only) cross ' +
    'hub-service and device-hub as two delay lines in series, each path the same ones; direct TCP crosses device-service. ' +
    "A leg with loss (`cellular-lossy`) also crosses a veth pair into a network namespace, where nftables drops that share of TCP segments each way (`bench/netns.ts`), for every path alike. Cloud figures are medians from the public clouds' published inter-region round-trip tables; the cellular leg's sources are in its row.\n\n" +
    `${markdownTable(['placement', 'device-hub', 'hub-service', 'device-service', 'relayed RTT ms', 'direct RTT ms', 'where'], rows)}\n` +
    Object.entries(r.skippedPlacements ?? {})
      .map(([id, why]) => `\nPlacement \`${id}\` skipped: ${why}.\n`)
      .join('')
  );
}

function scenarioSections(r: BenchResults): string {
  const out: string[] = [];
  const pathIds = r.paths.filter((p) => p.skipped === undefined).map((p) => p.id);
  for (const s of SCENARIOS) {
    if (!r.scenarios.includes(s.id)) continue;
    const skipped = r.skippedScenarios?.[s.id];
    if (skipped !== undefined) {
      out.push(`### ${s.title} (\`${s.id}\`)\n\nskipped: ${skipped}.\n`);
      continue;
    }
    const places = r.placements.filter((p) => s.placements === 'all' || p.loopback);
    if (places.length === 0) continue;
    const primary = s.columns.find((c) => c.metric === s.primary.metric);
    const header = [
      'placement',
      'path',
      'rounds',
      ...s.columns.map((c) => c.label),
      `${primary?.label ?? s.primary.metric} min-max`,
      `${s.primary.metric} vs direct`,
      `${s.primary.metric} vs OpenSSH`,
      'note',
    ];
    const rows: string[][] = [];
    for (const pl of places) {
      for (const pid of pathIds) {
        const recs = r.records.filter((x) => x.scenario === s.id && x.path === pid && x.placement === pl.id);
        if (recs.length === 0) continue;
        const ok = recs.filter((x) => x.error === undefined);
        const errors = [...new Set(recs.filter((x) => x.error !== undefined).map((x) => x.error as string))];
        const partial = ok.filter((x) => x.partial === true).length;
        const notes = [
          errors.length > 0 ? `**failed** in ${recs.length - ok.length} of ${recs.length} rounds: ${errors.join('; ')}` : '',
          partial > 0 ? `partial in ${partial} rounds` : '',
          ...new Set(ok.map((x) => x.note ?? '').filter(Boolean)),
        ].filter(Boolean);
        const med = (key: string): number | undefined => metric(r, s.id, pid, pl.id, key);
        rows.push([
          pl.id,
          pid,
          `${ok.length}`,
          ...s.columns.map((c) => fmt(med(c.metric), c.digits)),
          rangeCell(metricSpread(r, s.id, pid, pl.id, s.primary.metric), primary?.digits ?? 1),
          ratioCell(r, s.id, pl.id, s.primary.metric, pid, 'direct'),
          ratioCell(r, s.id, pl.id, s.primary.metric, pid, 'openssh'),
          notes.join('; '),
        ]);
      }
    }
    if (rows.length === 0) continue;
    const better = s.primary.higherIsBetter ? 'higher is better' : 'lower is better';
    out.push(
      `### ${s.title} (\`${s.id}\`)\n\nEach figure is the median over paired rounds; min-max is the spread of ${s.primary.metric} over rounds. ` +
        `Ratios are the median (and range) of the per-round ratios of this path's ${s.primary.metric} over direct TCP's and OpenSSH's ` +
        `run beside it in the same round at the same placement (${better}).\n\n${markdownTable(header, rows)}\n`,
    );
  }
  return `## Scenarios\n\n${out.join('\n')}`;
}

function placementSummary(r: BenchResults): string {
  const rows: string[][] = [];
  for (const pl of r.placements.filter((p) => !p.loopback)) {
    for (const p of r.paths.filter((x) => x.skipped === undefined)) {
      const p50us = metric(r, 'rtt', p.id, pl.id, 'p50_us');
      const MBps = metric(r, 'bulk-1', p.id, pl.id, 'MBps');
      if (p50us === undefined && MBps === undefined) continue;
      const legs = p.id === 'direct' ? directRttMs(pl) : relayedRttMs(pl);
      const cap = p.id === 'direct' ? directCapacityMBps(pl) : relayedCapacityMBps(pl);
      const p50ms = p50us === undefined ? undefined : p50us / 1000;
      const emu = metric(r, 'rtt', EMULATOR_PATH_ID, pl.id, 'p50_us');
      const overEmu =
        p.id === 'direct' || p.id === EMULATOR_PATH_ID || p50us === undefined || emu === undefined ? undefined : (p50us - emu) / 1000;
      rows.push([
        pl.id,
        p.id,
        fmt(legs, 1),
        fmt(p50ms, 1),
        fmt(p50ms === undefined ? undefined : p50ms - legs, 2),
        fmt(overEmu, 2),
        fmt(MBps, 1),
        fmt(cap > 0 ? cap : undefined, 1),
        fmt(metric(r, 'bulk-1', p.id, pl.id, 'link_pct'), 0),
      ]);
    }
  }
  if (rows.length === 0) return '';
  return (
    '## Per placement: round trip against the legs, throughput against the link\n\n' +
    'A relayed path crosses device-hub + hub-service, so its geometric RTT is their sum; direct TCP crosses device-service. ' +
    'The `emulator` row is a blind relay through the same two delay lines with no tunnel: its `p50 - legs` is what the ' +
    'emulator itself adds, and `p50 - emulator` is what a relayed path adds on top of it. Medians over rounds. ' +
    'One connection below the link capacity shows a window that does not grow to the bandwidth-delay product.\n\n' +
    `${markdownTable(['placement', 'path', 'legs RTT ms', 'measured p50 ms', 'p50 - legs ms', 'p50 - emulator ms', '1-conn MB/s', 'link MB/s', '% of link'], rows)}\n`
  );
}

function resourcesSection(r: BenchResults): string {
  const rows: string[][] = [];
  const seen = new Set<string>();
  for (const rec of r.records) {
    if (rec.usage === undefined || rec.placement !== 'loopback' || rec.error !== undefined) continue;
    const key = `${rec.scenario}\u0000${rec.path}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const recs = findRecords(r, rec.scenario, rec.path, 'loopback');
    for (const u of rec.usage) {
      const cpu = cpuSpread(r, rec.scenario, rec.path, 'loopback', u.role);
      if (cpu === undefined) continue;
      const rss = spreadOf(recs.map((x) => x.usage?.find((y) => y.role === u.role)?.peakRssBytes ?? NaN));
      const kernel = spreadOf(recs.map((x) => kernelPerGiB(x, u.role) ?? NaN));
      rows.push([
        rec.scenario,
        rec.path,
        u.role,
        `${cpu.n}`,
        fmt(cpu.median, 2),
        rangeCell(cpu, 2),
        fmt(kernel?.median, 2),
        fmt(rss === undefined ? undefined : rss.median / 1e6, 1),
        fmt(rss === undefined ? undefined : rss.max / 1e6, 1),
      ]);
    }
  }
  if (rows.length === 0) return '';
  return (
    '## CPU and memory per GiB (loopback bulk)\n\n' +
    'Median and min-max over the paired rounds. CPU is user + system seconds from /proc/PID/stat during the transfer (10 ms ticks), divided by GiB moved in that round; of it, the kernel column is the system part (socket copies, TCP, wake-ups); peak RSS is VmHWM ' +
    '(sshd includes its per-connection children). Direct TCP has no process of its own on loopback.\n\n' +
    `${markdownTable(['scenario', 'path', 'process', 'rounds', 'CPU s / GiB', 'CPU min-max', 'of it kernel', 'peak RSS MB', 'peak RSS max MB'], rows)}\n`
  );
}

function chartsSection(o: ReportOptions): string {
  const entries = Object.entries(o.charts);
  if (entries.length === 0) return '';
  return (
    '## Charts\n\nMedians over paired rounds, whiskers min-max over rounds; each panel has its own linear scale and shows only ' +
    'the paths that ran in it (the plaintext and workers variants run `bulk-1` on loopback only; the emulator-only path runs on ' +
    'emulated placements only).\n\n' +
    `${entries.map(([id, rel]) => `![${id}](${rel})`).join('\n\n')}\n`
  );
}

function moduleSections(r: BenchResults): string {
  const out: string[] = [];
  for (const m of allModules()) {
    if (!(m.id in r.modules)) continue;
    // A module that failed or passed its time bound is marked failed, whatever its own renderer says.
    const failed = moduleError(r.modules[m.id]);
    const body = failed !== undefined ? `**failed**: ${failed}` : m.render(r.modules[m.id], r);
    if (body !== undefined) out.push(`## ${m.title}\n\n${body}\n`);
  }
  return out.join('\n');
}

export function renderReport(r: BenchResults, o: ReportOptions): string {
  const parts = [
    '# devstreams bench results\n\n' +
      'Written by `npm run bench` (bench/run.ts). Every row ran in the same run on the same machine; ratios compare with ' +
      `direct TCP and OpenSSH \`-L\` at the same placement. Raw data: [${o.jsonRel}](${o.jsonRel}). Loopback figures on ` +
      'this machine vary by 30-60% between runs; compare ratios within one run, not absolute numbers across runs.\n',
    goalsSection(r),
    machineSection(r),
    pathsSection(r),
    placementsSection(r),
    scenarioSections(r),
    placementSummary(r),
    resourcesSection(r),
    chartsSection(o),
    moduleSections(r),
  ];
  return `${parts.filter((p) => p !== '').join('\n')}`;
}
