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
  /** Data collected by report modules (mux, hub, crypto micro-benches), by module id. */
  readonly modules: Record<string, unknown>;
}

/** The record of a scenario/path/placement, if it ran without error. */
export function findRecord(r: BenchResults, scenario: string, path: string, placement: string): RunRecord | undefined {
  return r.records.find((x) => x.scenario === scenario && x.path === path && x.placement === placement && x.error === undefined);
}

export function metric(r: BenchResults, scenario: string, path: string, placement: string, key: string): number | undefined {
  const v = findRecord(r, scenario, path, placement)?.metrics[key];
  return v === undefined || Number.isNaN(v) ? undefined : v;
}
