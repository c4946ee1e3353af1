// The issue's goals for the devstreams path, evaluated from a run's records. Each is a data-driven
// row; other bench modules add theirs through registerGoal (report/registry.ts). Where it means
// something, the same measure is shown for OpenSSH as a reference, so the row reads even before
// the tunnel runs, and for three blind Node pipe() relays (the floor of a three-process path of
// Node written the ordinary way) where that path ran.
import { DEVSTREAMS_PATH_ID, DEVSTREAMS_PLAIN_PATH_ID, DEVSTREAMS_QUEUE_TARGET_PATH_ID } from '../paths/devstreams.js';
import { NODE_RELAYS_PATH_ID } from '../paths/node-relays.js';
import { hasLoss } from '../placements.js';
import { cpuPerGiB, cpuSpread, findRecord, findRecords, median, metric, roundsOf, roundView, type BenchResults } from '../results.js';
import { FIXED_LOAD_MBPS } from '../scenarios/latency.js';
import { registerGoal, type GoalVerdict } from './registry.js';
import { throughputCeiling } from './throughput-floor.js';

const SUBJECT = DEVSTREAMS_PATH_ID;
const REFERENCE = 'openssh';
const f = (x: number, d = 1): string => x.toFixed(d);

/** Goal thresholds, as the issue states them. */
export const GOAL_THRESHOLDS = {
  throughputVsOpenssh: 1.0,
  rttOverDirectUs: 150,
  interactiveP99Us: 2000,
  ttfbSlackMs: 1,
  /** Issue 19 goal 3: time to first byte through an open stream on loopback, p99 at most this. */
  ttfbLoopbackP99Ms: 3,
  /** Issue 19 goals 2, 3 and 4: below (or, for HTTP requests/s, at or above) OpenSSH's in the same round. */
  vsOpenssh: 1.0,
  intercontinentalLinkFraction: 0.9,
  /** Issue 19 goal 1a: interactive p99 beside a fixed 100 MB/s load within this of direct's p99. */
  fixedLoadP99OverDirectUs: 2000,
  /** Issue 19 goal 1: the bulk load keeps at least this share of what it moves alone. */
  bulkKeptPct: 90,
  /** Issue 19 goal 1b: interactive p99 under saturating bulk below this fraction of OpenSSH's. */
  saturatedP99VsOpenssh: 1.0,
  /** Issue 18 goal 2: CPU seconds per GiB in sealed loopback bulk-1 (iperf3), per process. */
  cpuSecPerGiB: { hub: 1.1, 'device proxy': 2.0, 'service proxy': 2.0 },
} as const;

/**
 * A goal's measure for one path in one round (a view of the run holding that round only): the
 * judged value with its figures in words, or why it cannot be measured.
 */
type Measure = (r: BenchResults, path: string) => { value: number; detail: string } | string;

/** A goal: its measure, when a value passes, and how to print the value. */
interface GoalRule {
  readonly measure: Measure;
  readonly pass: (v: number) => boolean;
  readonly show: (v: number) => string;
}

function skipReason(r: BenchResults, path: string): string | undefined {
  const p = r.paths.find((x) => x.id === path);
  if (p === undefined) return `${path} path not selected`;
  if (p.skipped !== undefined) return `${path} path skipped (see Paths)`;
  return undefined;
}

interface RoundJudgement {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly held: number;
  readonly n: number;
  /** The detail of the round whose value is nearest the median. */
  readonly detail: string;
}

/** Measures each round on its own, then judges the median of the per-round values. */
function judgeRounds(r: BenchResults, rule: GoalRule, path: string): RoundJudgement | string {
  const per: Array<{ value: number; detail: string }> = [];
  let why = 'not measured';
  for (const k of roundsOf(r)) {
    const m = rule.measure(roundView(r, k), path);
    if (typeof m === 'string') why = m;
    else if (Number.isFinite(m.value)) per.push(m);
  }
  if (per.length === 0) return why;
  const med = median(per.map((x) => x.value)) as number;
  const nearest = [...per].sort((a, b) => Math.abs(a.value - med) - Math.abs(b.value - med))[0] as { detail: string };
  return {
    median: med,
    min: Math.min(...per.map((x) => x.value)),
    max: Math.max(...per.map((x) => x.value)),
    held: per.filter((x) => rule.pass(x.value)).length,
    n: per.length,
    detail: nearest.detail,
  };
}

function judgementText(j: RoundJudgement, rule: GoalRule): string {
  const range = j.n > 1 ? ` (rounds ${rule.show(j.min)} to ${rule.show(j.max)})` : '';
  return `median ${rule.show(j.median)}${range}; held in ${j.held} of ${j.n} rounds; median round: ${j.detail}`;
}

/** The paths a goal's row shows beside the subject's figures, when they ran. */
const REFERENCES: ReadonlyArray<{ id: string; label: string }> = [
  { id: REFERENCE, label: 'OpenSSH' },
  { id: NODE_RELAYS_PATH_ID, label: 'three Node pipe() relays' },
];

/**
 * Evaluates a goal for the subject over rounds, and adds each reference path's figures when it
 * has them (`references`: none, all, or all but OpenSSH for a goal measured against OpenSSH).
 */
function evaluateWith(r: BenchResults, rule: GoalRule, references: boolean | 'floor'): GoalVerdict {
  const refText = (): string => {
    if (references === false) return '';
    const parts: string[] = [];
    for (const ref of REFERENCES) {
      if ((references === 'floor' && ref.id === REFERENCE) || skipReason(r, ref.id) !== undefined) continue;
      const j = judgeRounds(r, rule, ref.id);
      if (typeof j !== 'string')
        parts.push(`${ref.label}: median ${rule.show(j.median)}, ${rule.pass(j.median) ? 'would meet' : 'would not meet'}`);
    }
    return parts.length === 0 ? '' : ` (reference, ${parts.join('; ')})`;
  };
  const skipped = skipReason(r, SUBJECT);
  if (skipped !== undefined) return { status: 'not measured', detail: `${skipped}${refText()}` };
  const j = judgeRounds(r, rule, SUBJECT);
  if (typeof j === 'string') return { status: 'not measured', detail: `${j}${refText()}` };
  const ok = rule.pass(j.median);
  return { status: ok ? 'met' : 'not met', rounds: `${j.held} of ${j.n}`, detail: `${judgementText(j, rule)}${refText()}` };
}

/**
 * A loopback measure of this path against OpenSSH's in the same round, as a ratio (`metricId` of
 * `scenario`); `lowerIsBetter` says which way passes.
 */
function vsOpensshRule(scenario: string, metricId: string, unit: string, lowerIsBetter: boolean, digits: number): GoalRule {
  return {
    measure: (r, path) => {
      const d = metric(r, scenario, path, 'loopback', metricId);
      const o = metric(r, scenario, REFERENCE, 'loopback', metricId);
      if (d === undefined || o === undefined) return `needs ${scenario} on loopback for this path and openssh`;
      const detail = `${f(d, digits)} ${unit} vs OpenSSH ${f(o, digits)} ${unit}`;
      // A round whose requests failed does not count as fast (HTTP reports its errors).
      const errors = metric(r, scenario, path, 'loopback', 'errors') ?? 0;
      if (!lowerIsBetter && errors > 0) return { value: 0, detail: `${detail}, with ${errors} errors` };
      return { value: d / o, detail };
    },
    pass: (v) => (lowerIsBetter ? v < GOAL_THRESHOLDS.vsOpenssh : v >= GOAL_THRESHOLDS.vsOpenssh),
    show: (v) => `${f(v, 2)}x OpenSSH`,
  };
}

const rttVsOpenssh = vsOpensshRule('rtt', 'p50_us', 'us', true, 0);
const ttfbLoopbackVsOpenssh = vsOpensshRule('ttfb', 'p50_ms', 'ms', true, 2);
const httpVsOpenssh = vsOpensshRule('http', 'rps', 'req/s', false, 0);

const ttfbLoopbackP99: GoalRule = {
  measure: (r, path) => {
    const v = metric(r, 'ttfb', path, 'loopback', 'p99_ms');
    if (v === undefined) return 'needs ttfb on loopback for this path';
    return { value: v, detail: `p99 ${f(v, 2)} ms` };
  },
  pass: (v) => v <= GOAL_THRESHOLDS.ttfbLoopbackP99Ms,
  show: (v) => `${f(v, 2)} ms`,
};

const throughputVsOpenssh: GoalRule = {
  measure: (r, path) => {
    const d = metric(r, 'bulk-1', path, 'loopback', 'MBps');
    const o = metric(r, 'bulk-1', REFERENCE, 'loopback', 'MBps');
    if (d === undefined || o === undefined) return 'needs bulk-1 (iperf3) on loopback for devstreams and openssh';
    return { value: d / o, detail: `${f(d)} MB/s vs OpenSSH ${f(o)} MB/s` };
  },
  pass: (v) => v >= GOAL_THRESHOLDS.throughputVsOpenssh,
  show: (v) => `${f(v, 2)}x`,
};

const rttVsDirect: GoalRule = {
  measure: (r, path) => {
    const d = metric(r, 'rtt', path, 'loopback', 'p50_us');
    const b = metric(r, 'rtt', 'direct', 'loopback', 'p50_us');
    if (d === undefined || b === undefined) return 'needs rtt on loopback for this path and direct';
    return { value: d - b, detail: `p50 ${f(d, 0)} us vs direct ${f(b, 0)} us` };
  },
  pass: (v) => v <= GOAL_THRESHOLDS.rttOverDirectUs,
  show: (v) => `+${f(v, 0)} us`,
};

const interactive: GoalRule = {
  measure: (r, path) => {
    const p = metric(r, 'interactive', path, 'loopback', 'p99_us');
    if (p === undefined) return 'needs interactive on loopback';
    return { value: p, detail: `p99 ${f(p / 1000, 2)} ms` };
  },
  pass: (v) => v <= GOAL_THRESHOLDS.interactiveP99Us,
  show: (v) => `p99 ${f(v / 1000, 2)} ms`,
};

// The path RTT is the larger of the legs' nominal RTT and the path's own measured 64-byte p50 at
// that placement: the emulator adds time per crossing (timer granularity), which is not the
// tunnel's to pay for. The goal is that a new connection costs no hub round trip. The judged value
// is the worst placement's excess over its path RTT. Placements with packet loss are left out: their
// TTFB includes loss recovery (a lost SYN waits 1 s), which the goal does not judge; their rows
// stay in the TTFB table.
const ttfbOpen: GoalRule = {
  measure: (r, path) => {
    const rows = r.placements
      .filter((p) => !p.loopback && !hasLoss(p))
      .map((p) => {
        const nominal = metric(r, 'ttfb', path, p.id, 'path_rtt_ms');
        const measured = metric(r, 'rtt', path, p.id, 'p50_us');
        const rtt = Math.max(nominal ?? 0, measured === undefined ? 0 : measured / 1000);
        return { id: p.id, v: metric(r, 'ttfb', path, p.id, 'p50_ms'), rtt: nominal === undefined ? undefined : rtt };
      })
      .filter((x): x is { id: string; v: number; rtt: number } => x.v !== undefined && x.rtt !== undefined);
    if (rows.length === 0) return 'needs ttfb on an emulated placement';
    return {
      value: Math.max(...rows.map((x) => x.v - x.rtt)),
      detail: rows.map((x) => `${x.id} ${f(x.v)} ms vs RTT ${f(x.rtt)} ms`).join('; '),
    };
  },
  pass: (v) => v <= GOAL_THRESHOLDS.ttfbSlackMs,
  show: (v) => `${v >= 0 ? '+' : ''}${f(v, 1)} ms over the path RTT (worst placement)`,
};

const intercontinentalLink: GoalRule = {
  measure: (r, path) => {
    const pct = metric(r, 'bulk-1', path, 'intercontinental', 'link_pct');
    if (pct === undefined) return 'needs bulk-1 on the intercontinental placement';
    // A transfer cut short (time limit, reset) has no meaningful rate: bytes written, not received.
    if (findRecord(r, 'bulk-1', path, 'intercontinental')?.partial === true)
      return { value: 0, detail: 'transfer cut short (partial): see the bulk-1 table' };
    return { value: pct, detail: `${f(pct, 0)}% of the link` };
  },
  pass: (v) => v >= GOAL_THRESHOLDS.intercontinentalLinkFraction * 100,
  show: (v) => `${f(v, 0)}% of the link`,
};

/**
 * Issue 18 goal 2: each tunnel process's CPU seconds per GiB in loopback bulk-1 (iperf3, sealed),
 * judged on each process's median over rounds; a round holds when all of them are within their
 * bound in that round.
 */
function cpuPerGiBGoal(r: BenchResults): GoalVerdict {
  const skipped = skipReason(r, SUBJECT);
  if (skipped !== undefined) return { status: 'not measured', detail: skipped };
  const bounds = Object.entries(GOAL_THRESHOLDS.cpuSecPerGiB);
  const spreads = bounds.map(([role, bound]) => ({ role, bound, s: cpuSpread(r, 'bulk-1', SUBJECT, 'loopback', role) }));
  if (spreads.some((x) => x.s === undefined)) return { status: 'not measured', detail: 'needs bulk-1 (iperf3) on loopback for devstreams' };
  const recs = findRecords(r, 'bulk-1', SUBJECT, 'loopback');
  const rounds = recs.map((rec) => bounds.every(([role, bound]) => (cpuPerGiB(rec, role) ?? Infinity) <= bound));
  const ok = spreads.every((x) => (x.s?.median ?? Infinity) <= x.bound);
  const text = spreads
    .map(({ role, bound, s }) => {
      const v = s as { median: number; min: number; max: number; n: number };
      const range = v.n > 1 ? ` (${f(v.min, 2)}-${f(v.max, 2)})` : '';
      return `${role} ${f(v.median, 2)}${range} ${v.median <= bound ? '<=' : '>'} ${f(bound, 1)}`;
    })
    .join('; ');
  return {
    status: ok ? 'met' : 'not met',
    rounds: `${rounds.filter(Boolean).length} of ${rounds.length}`,
    detail: `median CPU s/GiB (rounds min-max): ${text}; a round holds when all three are within bound`,
  };
}

/** One round's verdict of a goal that is judged per round: its figures and whether it held. */
interface RoundVerdict {
  readonly held: boolean;
  readonly detail: string;
}

/** Medians of `values` with their range over rounds: `1.55 ms (1.20-1.90)`. */
function spreadText(values: readonly number[], show: (v: number) => string): string {
  const m = median(values);
  if (m === undefined) return '-';
  return values.length > 1 ? `${show(m)} (${show(Math.min(...values))} to ${show(Math.max(...values))})` : show(m);
}

const ms = (us: number): string => `${f(us / 1000, 2)} ms`;
const signedMs = (us: number): string => `${us >= 0 ? '+' : ''}${ms(us)}`;

/**
 * Issue 19 goal 1a for one path: per round, its interactive p99 beside the fixed 100 MB/s load
 * minus direct's in that round, and the share of its load it kept. Medians judge; a round holds
 * when both hold in it.
 */
function fixedLoadRounds(r: BenchResults, path: string): { deltas: number[]; kept: number[]; rounds: RoundVerdict[] } | string {
  const deltas: number[] = [];
  const kept: number[] = [];
  const rounds: RoundVerdict[] = [];
  for (const k of roundsOf(r)) {
    const v = roundView(r, k);
    const p = metric(v, 'interactive-100', path, 'loopback', 'p99_us');
    const d = metric(v, 'interactive-100', 'direct', 'loopback', 'p99_us');
    const kp = metric(v, 'interactive-100', path, 'loopback', 'kept_pct');
    if (p === undefined || d === undefined || kp === undefined) continue;
    deltas.push(p - d);
    kept.push(kp);
    rounds.push({
      held: p - d <= GOAL_THRESHOLDS.fixedLoadP99OverDirectUs && kp >= GOAL_THRESHOLDS.bulkKeptPct,
      detail: `p99 ${ms(p)} vs direct ${ms(d)}, kept ${f(kp, 0)}%`,
    });
  }
  return rounds.length === 0 ? `needs interactive-100 on loopback for ${path} and direct` : { deltas, kept, rounds };
}

function fixedLoadGoal(r: BenchResults): GoalVerdict {
  const skipped = skipReason(r, SUBJECT);
  if (skipped !== undefined) return { status: 'not measured', detail: skipped };
  const j = fixedLoadRounds(r, SUBJECT);
  if (typeof j === 'string') return { status: 'not measured', detail: j };
  const ok =
    (median(j.deltas) ?? Infinity) <= GOAL_THRESHOLDS.fixedLoadP99OverDirectUs && (median(j.kept) ?? 0) >= GOAL_THRESHOLDS.bulkKeptPct;
  const others = [REFERENCE, DEVSTREAMS_QUEUE_TARGET_PATH_ID]
    .filter((p) => skipReason(r, p) === undefined)
    .map((p) => {
      const o = fixedLoadRounds(r, p);
      return typeof o === 'string' ? '' : `; ${p}: p99 ${spreadText(o.deltas, signedMs)} over direct, kept ${f(median(o.kept) ?? 0, 0)}%`;
    })
    .join('');
  return {
    status: ok ? 'met' : 'not met',
    rounds: `${j.rounds.filter((x) => x.held).length} of ${j.rounds.length}`,
    detail: `p99 over direct's: median ${spreadText(j.deltas, signedMs)}; bulk kept median ${spreadText(j.kept, (v) => `${f(v, 0)}%`)} of what it moves alone${others}`,
  };
}

/**
 * Issue 19 goal 1b for one path: per round, its interactive p99 under saturating iperf3 bulk over
 * OpenSSH's in that round, with the bulk beside it against that round's bulk-1 (shown, not judged:
 * bulk-1 moves a byte count, the interactive load runs for as long as the samples take).
 */
function saturatedRounds(r: BenchResults, path: string): { ratios: number[]; held: number; shares: number[] } | string {
  const ratios: number[] = [];
  const shares: number[] = [];
  for (const k of roundsOf(r)) {
    const v = roundView(r, k);
    const p = metric(v, 'interactive', path, 'loopback', 'p99_us');
    const o = metric(v, 'interactive', REFERENCE, 'loopback', 'p99_us');
    if (p === undefined || o === undefined || o === 0) continue;
    ratios.push(p / o);
    const beside = metric(v, 'interactive', path, 'loopback', 'bulk_MBps');
    const alone = metric(v, 'bulk-1', path, 'loopback', 'MBps');
    if (beside !== undefined && alone !== undefined && alone > 0) shares.push((beside / alone) * 100);
  }
  if (ratios.length === 0) return `needs interactive on loopback for ${path} and openssh`;
  return { ratios, held: ratios.filter((x) => x < GOAL_THRESHOLDS.saturatedP99VsOpenssh).length, shares };
}

function saturatedGoal(r: BenchResults): GoalVerdict {
  const skipped = skipReason(r, SUBJECT) ?? skipReason(r, REFERENCE);
  if (skipped !== undefined) return { status: 'not measured', detail: skipped };
  const j = saturatedRounds(r, SUBJECT);
  if (typeof j === 'string') return { status: 'not measured', detail: j };
  const x = (v: number): string => `${f(v, 2)}x`;
  const share = (sh: number[]): string =>
    sh.length === 0 ? '' : `, bulk beside it ${spreadText(sh, (v) => `${f(v, 0)}%`)} of that round's bulk-1`;
  const q = skipReason(r, DEVSTREAMS_QUEUE_TARGET_PATH_ID) === undefined ? saturatedRounds(r, DEVSTREAMS_QUEUE_TARGET_PATH_ID) : '';
  const qText =
    typeof q === 'string'
      ? ''
      : `; ${DEVSTREAMS_QUEUE_TARGET_PATH_ID}: ${spreadText(q.ratios, x)}, ${q.held} of ${q.ratios.length} rounds${share(q.shares)}`;
  const m = median(j.ratios) as number;
  return {
    status: m < GOAL_THRESHOLDS.saturatedP99VsOpenssh ? 'met' : 'not met',
    rounds: `${j.held} of ${j.ratios.length}`,
    detail: `p99 over OpenSSH's in the same round: median ${spreadText(j.ratios, x)}${share(j.shares)}${qText}`,
  };
}

export function registerBuiltinGoals(): void {
  registerGoal({
    order: 10,
    id: 'throughput-vs-openssh',
    text: `One-connection throughput >= ${GOAL_THRESHOLDS.throughputVsOpenssh.toFixed(1)}x OpenSSH -L (loopback)`,
    evaluate: (r) => {
      const v = evaluateWith(r, throughputVsOpenssh, false);
      const c = throughputCeiling(r, SUBJECT, DEVSTREAMS_PLAIN_PATH_ID, REFERENCE);
      return typeof c === 'string' || v.status === 'not measured' ? v : { ...v, detail: `${v.detail}; ${c.text}` };
    },
  });
  registerGoal({
    order: 10,
    id: 'cpu-per-gib',
    text: `CPU per GiB, sealed loopback bulk-1 (iperf3): hub <= ${GOAL_THRESHOLDS.cpuSecPerGiB.hub}, device proxy and service proxy <= ${GOAL_THRESHOLDS.cpuSecPerGiB['device proxy'].toFixed(1)} s/GiB each`,
    evaluate: cpuPerGiBGoal,
  });
  registerGoal({
    order: 10,
    id: 'rtt-vs-direct',
    text: `64-byte round trip on loopback within ${GOAL_THRESHOLDS.rttOverDirectUs} us of direct at p50`,
    evaluate: (r) => evaluateWith(r, rttVsDirect, true),
  });
  registerGoal({
    order: 10,
    id: 'rtt-vs-openssh',
    text: '64-byte round trip p50 on loopback below OpenSSH in the same round',
    evaluate: (r) => evaluateWith(r, rttVsOpenssh, 'floor'),
  });
  registerGoal({
    order: 10,
    id: 'interactive-under-bulk',
    text: `Interactive channel p99 under a saturating bulk channel within ${GOAL_THRESHOLDS.interactiveP99Us / 1000} ms (loopback)`,
    evaluate: (r) => evaluateWith(r, interactive, true),
  });
  registerGoal({
    order: 10,
    id: 'interactive-fixed-load',
    text: `Interactive p99 beside a fixed ${FIXED_LOAD_MBPS} MB/s iperf3 load within ${GOAL_THRESHOLDS.fixedLoadP99OverDirectUs / 1000} ms of direct's p99 under the same load, bulk keeping >= ${GOAL_THRESHOLDS.bulkKeptPct}% of what it moves alone (loopback)`,
    evaluate: fixedLoadGoal,
  });
  registerGoal({
    order: 10,
    id: 'interactive-vs-openssh',
    text: 'Interactive p99 under saturating iperf3 bulk below OpenSSH p99 in the same round (loopback)',
    evaluate: saturatedGoal,
  });
  registerGoal({
    order: 10,
    id: 'ttfb-open-stream',
    text: `Time to first byte through an open stream within one emulated path RTT + ${GOAL_THRESHOLDS.ttfbSlackMs} ms`,
    evaluate: (r) => evaluateWith(r, ttfbOpen, true),
  });
  registerGoal({
    order: 10,
    id: 'ttfb-loopback-vs-openssh',
    text: 'Time to first byte through an open stream on loopback: p50 below OpenSSH in the same round',
    evaluate: (r) => evaluateWith(r, ttfbLoopbackVsOpenssh, 'floor'),
  });
  registerGoal({
    order: 10,
    id: 'ttfb-loopback-p99',
    text: `Time to first byte through an open stream on loopback: p99 <= ${GOAL_THRESHOLDS.ttfbLoopbackP99Ms} ms`,
    evaluate: (r) => evaluateWith(r, ttfbLoopbackP99, true),
  });
  registerGoal({
    order: 10,
    id: 'http-vs-openssh',
    text: 'HTTP requests/s through the path (autocannon, loopback) >= 1.0x OpenSSH in the same round',
    evaluate: (r) => evaluateWith(r, httpVsOpenssh, 'floor'),
  });
  registerGoal({
    order: 10,
    id: 'intercontinental-link',
    text: `Intercontinental 100 Mbit/s link: one connection reaches >= ${GOAL_THRESHOLDS.intercontinentalLinkFraction * 100}% of the link`,
    evaluate: (r) => evaluateWith(r, intercontinentalLink, true),
  });
}
