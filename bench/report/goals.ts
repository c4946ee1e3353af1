// The goals for the devstreams path, evaluated from a run's records. Each is a data-driven
// row; other bench modules add theirs through registerGoal (report/registry.ts). Where it means
// something, the same measure is shown for OpenSSH as a reference, so the row reads even before
// the tunnel runs.
import { DEVSTREAMS_PATH_ID } from '../paths/devstreams.js';
import { findRecord, metric, type BenchResults } from '../results.js';
import { registerGoal, type GoalVerdict } from './registry.js';

const SUBJECT = DEVSTREAMS_PATH_ID;
const REFERENCE = 'openssh';
const f = (x: number, d = 1): string => x.toFixed(d);

/** Goal thresholds, as the issue states them. */
export const GOAL_THRESHOLDS = {
  throughputVsOpenssh: 1.0,
  rttOverDirectUs: 150,
  interactiveP99Us: 2000,
  ttfbSlackMs: 1,
  intercontinentalLinkFraction: 0.9,
} as const;

/** A goal's measure for one path: pass/fail with figures, or why it cannot be measured. */
type Measure = (r: BenchResults, path: string) => { ok: boolean; detail: string } | string;

function skipReason(r: BenchResults, path: string): string | undefined {
  const p = r.paths.find((x) => x.id === path);
  if (p === undefined) return `${path} path not selected`;
  if (p.skipped !== undefined) return `${path} path skipped (see Paths)`;
  return undefined;
}

/** Evaluates `measure` for the subject, and adds the reference path's figures when it has them. */
function evaluateWith(r: BenchResults, measure: Measure, withReference: boolean): GoalVerdict {
  const refText = (): string => {
    if (!withReference || skipReason(r, REFERENCE) !== undefined) return '';
    const ref = measure(r, REFERENCE);
    return typeof ref === 'string' ? '' : ` (reference, OpenSSH: ${ref.detail}, ${ref.ok ? 'would meet' : 'would not meet'})`;
  };
  const skipped = skipReason(r, SUBJECT);
  if (skipped !== undefined) return { status: 'not measured', detail: `${skipped}${refText()}` };
  const m = measure(r, SUBJECT);
  if (typeof m === 'string') return { status: 'not measured', detail: `${m}${refText()}` };
  return { status: m.ok ? 'met' : 'not met', detail: `${m.detail}${refText()}` };
}

const throughputVsOpenssh: Measure = (r, path) => {
  const d = metric(r, 'bulk-1', path, 'loopback', 'MBps');
  const o = metric(r, 'bulk-1', REFERENCE, 'loopback', 'MBps');
  if (d === undefined || o === undefined) return 'needs bulk-1 on loopback for devstreams and openssh';
  return { ok: d >= GOAL_THRESHOLDS.throughputVsOpenssh * o, detail: `${f(d)} MB/s vs OpenSSH ${f(o)} MB/s = ${f(d / o, 2)}x` };
};

const rttVsDirect: Measure = (r, path) => {
  const d = metric(r, 'rtt', path, 'loopback', 'p50_us');
  const b = metric(r, 'rtt', 'direct', 'loopback', 'p50_us');
  if (d === undefined || b === undefined) return 'needs rtt on loopback for this path and direct';
  return { ok: d - b <= GOAL_THRESHOLDS.rttOverDirectUs, detail: `p50 ${f(d, 0)} us vs direct ${f(b, 0)} us (+${f(d - b, 0)} us)` };
};

const interactive: Measure = (r, path) => {
  const p = metric(r, 'interactive', path, 'loopback', 'p99_us');
  if (p === undefined) return 'needs interactive on loopback';
  return { ok: p <= GOAL_THRESHOLDS.interactiveP99Us, detail: `p99 ${f(p / 1000, 2)} ms` };
};

// The path RTT is the larger of the legs' nominal RTT and the path's own measured 64-byte p50 at
// that placement: the emulator adds ~0.5 ms per leg and direction (timer granularity), which is
// not the tunnel's to pay for. The goal is that a new connection costs no hub round trip.
const ttfbOpen: Measure = (r, path) => {
  const rows = r.placements
    .filter((p) => !p.loopback)
    .map((p) => {
      const nominal = metric(r, 'ttfb', path, p.id, 'path_rtt_ms');
      const measured = metric(r, 'rtt', path, p.id, 'p50_us');
      const rtt = Math.max(nominal ?? 0, measured === undefined ? 0 : measured / 1000);
      return { id: p.id, v: metric(r, 'ttfb', path, p.id, 'p50_ms'), rtt: nominal === undefined ? undefined : rtt };
    })
    .filter((x): x is { id: string; v: number; rtt: number } => x.v !== undefined && x.rtt !== undefined);
  if (rows.length === 0) return 'needs ttfb on an emulated placement';
  const bad = rows.filter((x) => x.v > x.rtt + GOAL_THRESHOLDS.ttfbSlackMs);
  return { ok: bad.length === 0, detail: rows.map((x) => `${x.id} ${f(x.v)} ms vs RTT ${f(x.rtt)} ms`).join('; ') };
};

const intercontinentalLink: Measure = (r, path) => {
  const pct = metric(r, 'bulk-1', path, 'intercontinental', 'link_pct');
  if (pct === undefined) return 'needs bulk-1 on the intercontinental placement';
  // A transfer cut short (time limit, reset) has no meaningful rate: bytes written, not received.
  if (findRecord(r, 'bulk-1', path, 'intercontinental')?.partial === true) return { ok: false, detail: 'transfer cut short (partial): see the bulk-1 table' };
  return { ok: pct >= GOAL_THRESHOLDS.intercontinentalLinkFraction * 100, detail: `${f(pct, 0)}% of the link` };
};

export function registerBuiltinGoals(): void {
  registerGoal({
    order: 10,
    id: 'throughput-vs-openssh',
    text: `One-connection throughput >= ${GOAL_THRESHOLDS.throughputVsOpenssh.toFixed(1)}x OpenSSH -L (loopback)`,
    evaluate: (r) => evaluateWith(r, throughputVsOpenssh, false),
  });
  registerGoal({
    order: 10,
    id: 'rtt-vs-direct',
    text: `64-byte round trip on loopback within ${GOAL_THRESHOLDS.rttOverDirectUs} us of direct at p50`,
    evaluate: (r) => evaluateWith(r, rttVsDirect, true),
  });
  registerGoal({
    order: 10,
    id: 'interactive-under-bulk',
    text: `Interactive channel p99 under a saturating bulk channel within ${GOAL_THRESHOLDS.interactiveP99Us / 1000} ms (loopback)`,
    evaluate: (r) => evaluateWith(r, interactive, true),
  });
  registerGoal({
    order: 10,
    id: 'ttfb-open-stream',
    text: `Time to first byte through an open stream within one emulated path RTT + ${GOAL_THRESHOLDS.ttfbSlackMs} ms`,
    evaluate: (r) => evaluateWith(r, ttfbOpen, true),
  });
  registerGoal({
    order: 10,
    id: 'intercontinental-link',
    text: `Intercontinental 100 Mbit/s link: one connection reaches >= ${GOAL_THRESHOLDS.intercontinentalLinkFraction * 100}% of the link`,
    evaluate: (r) => evaluateWith(r, intercontinentalLink, true),
  });
}
