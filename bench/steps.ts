// The runner's bounded steps: one scenario run (a path, a round) and one report module, each under
// its time bound (config.ts). A step that fails or passes its bound becomes a failed row of the
// report ("timed out: <step> gave no result within N s") and the run goes on.
import { withDeadline } from './deadline.js';
import type { ModuleContext, ReportModule } from './report/registry.js';
import type { RunRecord } from './results.js';
import type { Scenario, ScenarioContext } from './scenarios/types.js';

/** First line of an error's message. */
export function errorText(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0] ?? 'failed';
}

/** One scenario run under `boundMs`; a failure or a timeout is the record's `error`. */
export async function runScenarioBounded(
  s: Scenario,
  ctx: Omit<ScenarioContext, 'signal'>,
  round: number,
  boundMs: number,
): Promise<RunRecord> {
  const where = { path: ctx.pathId, placement: ctx.placement.id, scenario: s.id, round };
  try {
    const o = await withDeadline(`${ctx.pathId} · ${ctx.placement.id} · ${s.id} · round ${round}`, boundMs, (signal) =>
      s.run({ ...ctx, signal }),
    );
    return { ...where, ...o };
  } catch (err) {
    return { ...where, metrics: {}, error: errorText(err) };
  }
}

/** A module's data under `boundMs`, or `{ error }` when it failed or passed its bound. */
export async function collectModuleBounded(m: ReportModule, ctx: Omit<ModuleContext, 'signal'>, boundMs: number): Promise<unknown> {
  const collect = m.collect;
  if (collect === undefined) return undefined;
  try {
    return await withDeadline(`module ${m.id}`, boundMs, (signal) => collect({ ...ctx, signal }));
  } catch (err) {
    return { error: errorText(err) };
  }
}

/** The error a module's data carries, if its collection failed. */
export function moduleError(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined;
  const e = (data as { error?: unknown }).error;
  return typeof e === 'string' ? e : undefined;
}
