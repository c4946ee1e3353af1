// Extension points of RESULTS.md: goals (one row each in the Goals table) and report modules
// (a section of their own, with optional data they collect during the run). Bench modules for the
// mux, the hub and the crypto register here; the runner and the report need no change.
//
//   import { registerGoal, registerModule } from './report/registry.js';
//   registerModule({ id: 'mux', title: 'Mux micro-benchmarks', order: 50,
//     collect: async (ctx) => runTinybench(ctx.quick), render: (data) => markdownTable(data) });
//   registerGoal({ id: 'mux-frame-rate', text: 'frame encode >= 1M frames/s',
//     evaluate: (r) => { const d = r.modules.mux as MuxData | undefined; ... } });
import type { BenchBudget } from '../config.js';
import type { BenchResults } from '../results.js';

export type GoalStatus = 'met' | 'not met' | 'not measured';

export interface GoalVerdict {
  readonly status: GoalStatus;
  /** The measured figures behind the verdict, in words. */
  readonly detail: string;
  /** In how many paired rounds the goal held, e.g. "4 of 5" (goals judged per round). */
  readonly rounds?: string;
}

export interface Goal {
  readonly id: string;
  /** The goal as the issue states it. */
  readonly text: string;
  evaluate(results: BenchResults): GoalVerdict;
  /** Position in the Goals table (lower first; default 100, ties keep registration order). */
  readonly order?: number;
}

export interface ModuleContext {
  readonly quick: boolean;
  readonly budget: BenchBudget;
  readonly progress: (detail: string) => void;
  /** Aborted when the module passes its bound (`moduleTimeoutMs`): stop the children it started. */
  readonly signal?: AbortSignal;
}

export interface ReportModule {
  /** Stable id: selectable with --scenarios, key of results.modules. */
  readonly id: string;
  readonly title: string;
  /** Position among module sections (lower first). */
  readonly order: number;
  /** Runs the module's own measurements; the value is stored in results.modules[id]. */
  collect?(ctx: ModuleContext): Promise<unknown>;
  /** Markdown body of the section (without its heading); undefined to omit the section. */
  render(data: unknown, results: BenchResults): string | undefined;
  readonly goals?: readonly Goal[];
}

const goals: Goal[] = [];
const modules: ReportModule[] = [];

export function registerGoal(g: Goal): void {
  const i = goals.findIndex((x) => x.id === g.id);
  if (i >= 0) goals[i] = g;
  else goals.push(g);
}

export function registerModule(m: ReportModule): void {
  const i = modules.findIndex((x) => x.id === m.id);
  if (i >= 0) modules[i] = m;
  else modules.push(m);
  for (const g of m.goals ?? []) registerGoal(g);
}

export function allGoals(): readonly Goal[] {
  return [...goals].sort((a, b) => (a.order ?? 100) - (b.order ?? 100));
}

export function allModules(): readonly ReportModule[] {
  return [...modules].sort((a, b) => a.order - b.order);
}
