// The issue's goals for the devstreams path, evaluated from a run's records. Each is a data-driven
// row; other bench modules add theirs through registerGoal (report/registry.ts).
import { DEVSTREAMS_PATH_ID } from '../paths/devstreams.js';
import { metric, type BenchResults } from '../results.js';
import { registerGoal, type GoalVerdict } from './registry.js';

const SUBJECT = DEVSTREAMS_PATH_ID;
const notMeasured = (why: string): GoalVerdict => ({ status: 'not measured', detail: why });
const verdict = (ok: boolean, detail: string): GoalVerdict => ({ status: ok ? 'met' : 'not met', detail });
const f = (x: number, d = 1): string => x.toFixed(d);

function subjectMissing(r: BenchResults): GoalVerdict | undefined {
  const p = r.paths.find((x) => x.id === SUBJECT);
  if (p === undefined) return notMeasured(`${SUBJECT} path not selected`);
  if (p.skipped !== undefined) return notMeasured(`${SUBJECT} path skipped: ${p.skipped}`);
  return undefined;
}

/** Goal thresholds, as the issue states them. */
export const GOAL_THRESHOLDS = {
  throughputVsOpenssh: 1.0,
  rttOverDirectUs: 150,
  interactiveP99Us: 2000,
  ttfbSlackMs: 1,
  intercontinentalLinkFraction: 0.9,
} as const;

export function registerBuiltinGoals(): void {
  registerGoal({
    id: 'throughput-vs-openssh',
    text: `One-connection throughput >= ${GOAL_THRESHOLDS.throughputVsOpenssh.toFixed(1)}x OpenSSH -L (loopback)`,
    evaluate(r) {
      const missing = subjectMissing(r);
      if (missing) return missing;
      const d = metric(r, 'bulk-1', SUBJECT, 'loopback', 'MBps');
      const o = metric(r, 'bulk-1', 'openssh', 'loopback', 'MBps');
      if (d === undefined || o === undefined) return notMeasured('needs bulk-1 on loopback for devstreams and openssh');
      return verdict(d >= GOAL_THRESHOLDS.throughputVsOpenssh * o, `${f(d)} MB/s vs ${f(o)} MB/s = ${f(d / o, 2)}x`);
    },
  });
  registerGoal({
    id: 'rtt-vs-direct',
    text: `64-byte round trip on loopback within ${GOAL_THRESHOLDS.rttOverDirectUs} us of direct at p50`,
    evaluate(r) {
      const missing = subjectMissing(r);
      if (missing) return missing;
      const d = metric(r, 'rtt', SUBJECT, 'loopback', 'p50_us');
      const b = metric(r, 'rtt', 'direct', 'loopback', 'p50_us');
      if (d === undefined || b === undefined) return notMeasured('needs rtt on loopback for devstreams and direct');
      return verdict(d - b <= GOAL_THRESHOLDS.rttOverDirectUs, `p50 ${f(d, 0)} us vs direct ${f(b, 0)} us (+${f(d - b, 0)} us)`);
    },
  });
  registerGoal({
    id: 'interactive-under-bulk',
    text: `Interactive channel p99 under a saturating bulk channel within ${GOAL_THRESHOLDS.interactiveP99Us / 1000} ms (loopback)`,
    evaluate(r) {
      const missing = subjectMissing(r);
      if (missing) return missing;
      const p = metric(r, 'interactive', SUBJECT, 'loopback', 'p99_us');
      if (p === undefined) return notMeasured('needs interactive on loopback for devstreams');
      return verdict(p <= GOAL_THRESHOLDS.interactiveP99Us, `p99 ${f(p / 1000, 2)} ms`);
    },
  });
  registerGoal({
    id: 'ttfb-open-stream',
    text: `Time to first byte through an open stream within one emulated path RTT + ${GOAL_THRESHOLDS.ttfbSlackMs} ms`,
    evaluate(r) {
      const missing = subjectMissing(r);
      if (missing) return missing;
      // The path RTT is the larger of the legs' nominal RTT and the path's own measured 64-byte p50
      // at that placement: the emulator adds ~0.5 ms per leg and direction (timer granularity), which
      // is not the tunnel's to pay for. The goal is that a new connection costs no hub round trip.
      const rows = r.placements
        .filter((p) => !p.loopback)
        .map((p) => {
          const nominal = metric(r, 'ttfb', SUBJECT, p.id, 'path_rtt_ms');
          const measured = metric(r, 'rtt', SUBJECT, p.id, 'p50_us');
          const rtt = Math.max(nominal ?? 0, measured === undefined ? 0 : measured / 1000);
          return { id: p.id, v: metric(r, 'ttfb', SUBJECT, p.id, 'p50_ms'), rtt: nominal === undefined ? undefined : rtt };
        })
        .filter((x): x is { id: string; v: number; rtt: number } => x.v !== undefined && x.rtt !== undefined);
      if (rows.length === 0) return notMeasured('needs ttfb on an emulated placement for devstreams');
      const bad = rows.filter((x) => x.v > x.rtt + GOAL_THRESHOLDS.ttfbSlackMs);
      return verdict(bad.length === 0, rows.map((x) => `${x.id}: p50 ${f(x.v)} ms vs path RTT ${f(x.rtt)} ms`).join('; '));
    },
  });
  registerGoal({
    id: 'intercontinental-link',
    text: `Intercontinental 100 Mbit/s link: one connection reaches >= ${GOAL_THRESHOLDS.intercontinentalLinkFraction * 100}% of the link`,
    evaluate(r) {
      const missing = subjectMissing(r);
      if (missing) return missing;
      const pct = metric(r, 'bulk-1', SUBJECT, 'intercontinental', 'link_pct');
      if (pct === undefined) return notMeasured('needs bulk-1 on the intercontinental placement for devstreams');
      const ssh = metric(r, 'bulk-1', 'openssh', 'intercontinental', 'link_pct');
      return verdict(pct >= GOAL_THRESHOLDS.intercontinentalLinkFraction * 100, `${f(pct, 0)}% of link${ssh === undefined ? '' : ` (OpenSSH ${f(ssh, 0)}%)`}`);
    },
  });
}
