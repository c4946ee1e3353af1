// Scenario contract: a measurement that runs against any path's local ports.
import type { BenchBudget } from '../config.js';
import type { RunningPath } from '../paths/types.js';
import type { Placement } from '../placements.js';
import type { ProcUsage } from '../sampler.js';

export interface ScenarioContext {
  readonly pathId: string;
  readonly path: RunningPath;
  readonly placement: Placement;
  readonly budget: BenchBudget;
  /** Live progress detail for the current step (stderr). */
  readonly progress: (detail: string) => void;
  /** Aborted when the run passes its bound (`scenarioRunTimeoutMs`): stop the children it started. */
  readonly signal?: AbortSignal;
}

/** Numeric results keyed by metric id (units in the id: _MBps, _us, _ms, _rps, ...). */
export type Metrics = Record<string, number>;

export interface ScenarioOutcome {
  readonly metrics: Metrics;
  /** CPU and peak RSS of each path process during the scenario (bulk scenarios). */
  readonly usage?: ProcUsage[];
  /** Bytes moved while usage was measured (for CPU s / GiB). */
  readonly usageBytes?: number;
  /** Set when a bound (time) cut the run short. */
  readonly partial?: boolean;
  readonly note?: string;
}

/** One column of a scenario's table in RESULTS.md. */
export interface Column {
  readonly metric: string;
  readonly label: string;
  /** Digits after the decimal point. */
  readonly digits: number;
}

export interface Scenario {
  /** Stable id used in --scenarios, JSON and tables. */
  readonly id: string;
  readonly title: string;
  /** Which placements it runs on: loopback only, or every selected placement. */
  readonly placements: 'loopback' | 'all';
  /** Columns shown in RESULTS.md. */
  readonly columns: readonly Column[];
  /** Metric the ratio columns (vs direct, vs OpenSSH) are computed on. */
  readonly primary: { readonly metric: string; readonly higherIsBetter: boolean };
  /** Why it cannot run on this machine (a missing program), or undefined; absent = always runs. */
  unavailableReason?(): Promise<string | undefined>;
  run(ctx: ScenarioContext): Promise<ScenarioOutcome>;
}
