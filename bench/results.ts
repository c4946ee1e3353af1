// Shape of one bench run's raw results (written as JSON under bench/results/, read by the report).
import type { Placement } from './placements.js';
import type { ProcUsage } from './sampler.js';
import type { Metrics } from './scenarios/types.js';

export interface MachineInfo {
  readonly cpuModel: string;
  readonly cpuCount: number;
  readonly ramBytes: number;
  readonly os: string;
  readonly node: string;
  readonly openssh: string | undefined;
  readonly gitCommit: string | undefined;
}

/** One scenario on one path at one placement. */
export interface RunRecord {
  readonly path: string;
  readonly placement: string;
  readonly scenario: string;
  /** Paired round (1-based): paths of one round ran side by side, one after the other. */
  readonly round?: number;
  readonly metrics: Metrics;
  readonly usage?: ProcUsage[];
  readonly usageBytes?: number;
  readonly partial?: boolean;
  readonly note?: string;
  /** Set when the scenario failed; metrics is then empty. */
  readonly error?: string;
}

export interface PathInfo {
  readonly id: string;
  readonly title: string;
  /** Why it was skipped (missing binary, not built, failed to start), if it was. */
  readonly skipped?: string;
}

export interface BenchResults {
  readonly version: 1;
  readonly startedAt: string;
  finishedAt: string;
  readonly quick: boolean;
  readonly argv: readonly string[];
  readonly machine: MachineInfo;
  readonly placements: readonly Placement[];
  readonly paths: PathInfo[];
  readonly scenarios: readonly string[];
  readonly records: RunRecord[];
  /** Scenarios that did not run here, with why (e.g. iperf3 not installed). */
  readonly skippedScenarios?: Record<string, string>;
  /** Placements selected but not run here, with why (cellular-lossy without root or nftables). */
  readonly skippedPlacements?: Record<string, string>;
  /** Data collected by report modules (mux, hub, crypto micro-benches), by module id. */
  readonly modules: Record<string, unknown>;
}

/** The first record (round) of a scenario/path/placement that ran without error. */
export function findRecord(r: BenchResults, scenario: string, path: string, placement: string): RunRecord | undefined {
  return r.records.find((x) => x.scenario === scenario && x.path === path && x.placement === placement && x.error === undefined);
}

/** Every record (one per round) of a scenario/path/placement that ran without error. */
export function findRecords(r: BenchResults, scenario: string, path: string, placement: string): RunRecord[] {
  return r.records.filter((x) => x.scenario === scenario && x.path === path && x.placement === placement && x.error === undefined);
}

/** Median of the finite values; undefined when there are none (the lower middle of an even count). */
export function median(values: readonly number[]): number | undefined {
  const s = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (s.length === 0) return undefined;
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
}

/** Median, min and max of a metric over rounds. */
export interface Spread {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
}

export function spreadOf(values: readonly number[]): Spread | undefined {
  const s = values.filter((v) => Number.isFinite(v));
  const m = median(s);
  return m === undefined ? undefined : { median: m, min: Math.min(...s), max: Math.max(...s), n: s.length };
}

export function metricSpread(r: BenchResults, scenario: string, path: string, placement: string, key: string): Spread | undefined {
  return spreadOf(findRecords(r, scenario, path, placement).map((x) => x.metrics[key] ?? NaN));
}

/** A metric's median over rounds. */
export function metric(r: BenchResults, scenario: string, path: string, placement: string, key: string): number | undefined {
  return metricSpread(r, scenario, path, placement, key)?.median;
}

/** Rounds present in the run, ascending (records without a round count as round 1). */
export function roundsOf(r: BenchResults): number[] {
  return [...new Set(r.records.map((x) => x.round ?? 1))].sort((a, b) => a - b);
}

/** The run as if only round k had run: per-round ratios are computed on this view. */
export function roundView(r: BenchResults, k: number): BenchResults {
  return { ...r, records: r.records.filter((x) => (x.round ?? 1) === k) };
}

/**
 * Per-round ratio a/b of a metric between two paths at one placement, over the rounds where both
 * ran: the paths of a round ran side by side, so the ratio compares like with like.
 */
export function roundRatios(r: BenchResults, scenario: string, placement: string, key: string, a: string, b: string): number[] {
  const out: number[] = [];
  for (const k of roundsOf(r)) {
    const v = roundView(r, k);
    const x = metric(v, scenario, a, placement, key);
    const y = metric(v, scenario, b, placement, key);
    if (x !== undefined && y !== undefined && y !== 0) out.push(x / y);
  }
  return out;
}

const GIB = 1024 ** 3;

/** CPU seconds per GiB of one process (by role) in one record, if it was sampled. */
export function cpuPerGiB(rec: RunRecord, role: string): number | undefined {
  if (rec.usageBytes === undefined || rec.usageBytes === 0) return undefined;
  const u = rec.usage?.find((x) => x.role === role);
  return u === undefined ? undefined : u.cpuSeconds / (rec.usageBytes / GIB);
}

/** Kernel (system) CPU seconds per GiB of all of a record's sampled processes, if sampled. */
export function totalKernelPerGiB(rec: RunRecord): number | undefined {
  if (rec.usage === undefined || rec.usageBytes === undefined || rec.usageBytes === 0) return undefined;
  if (rec.usage.some((u) => u.kernelSeconds === undefined)) return undefined;
  return rec.usage.reduce((s, u) => s + (u.kernelSeconds ?? 0), 0) / (rec.usageBytes / GIB);
}

/** Kernel CPU seconds per GiB of one process (by role) in one record, if sampled. */
export function kernelPerGiB(rec: RunRecord, role: string): number | undefined {
  const u = rec.usage?.find((x) => x.role === role);
  if (u?.kernelSeconds === undefined || rec.usageBytes === undefined || rec.usageBytes === 0) return undefined;
  return u.kernelSeconds / (rec.usageBytes / GIB);
}

/** CPU seconds per GiB of all of a record's sampled processes together. */
export function totalCpuPerGiB(rec: RunRecord): number | undefined {
  if (rec.usage === undefined || rec.usageBytes === undefined || rec.usageBytes === 0) return undefined;
  return rec.usage.reduce((s, u) => s + u.cpuSeconds, 0) / (rec.usageBytes / GIB);
}

/** A process's CPU seconds per GiB over the rounds of a scenario/path/placement: median and min-max. */
export function cpuSpread(r: BenchResults, scenario: string, path: string, placement: string, role: string): Spread | undefined {
  return spreadOf(findRecords(r, scenario, path, placement).map((x) => cpuPerGiB(x, role) ?? NaN));
}
