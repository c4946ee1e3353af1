// Time bounds on the bench's steps. A step that never ends (a child that never exits, a reply
// that never comes) must fail loudly with its name instead of leaving the run idle forever, and
// the run goes on to write its report with that row marked failed.

/** A bounded step gave no result in time. */
export class StepTimeoutError extends Error {
  constructor(
    readonly step: string,
    readonly boundMs: number,
  ) {
    super(`timed out: ${step} gave no result within ${formatBound(boundMs)}`);
    this.name = 'StepTimeoutError';
  }
}

function formatBound(ms: number): string {
  return ms >= 1000 ? `${(ms / 1000).toFixed(ms % 1000 === 0 ? 0 : 1)} s` : `${ms} ms`;
}

/**
 * Runs `step` with a time bound. On time it settles as the step does; past `boundMs` it rejects
 * with a StepTimeoutError naming `name`, and aborts the signal it gave the step, so the step can
 * stop what it started (kill its child processes, close its sockets). The step is not awaited
 * after that: a step that ignores the signal is left behind, and the run goes on.
 */
export async function withDeadline<T>(name: string, boundMs: number, step: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new StepTimeoutError(name, boundMs);
      ac.abort(err);
      reject(err);
    }, boundMs);
  });
  try {
    // A step that throws before its first await still rejects here, not in the caller's frame.
    return await Promise.race([Promise.resolve().then(() => step(ac.signal)), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/** Rejects with the signal's reason once it aborts (for racing a wait that has no signal of its own). */
export function whenAborted(signal: AbortSignal | undefined): Promise<never> {
  return new Promise<never>((_, reject) => {
    if (signal === undefined) return;
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}
