/** Reconnect delays: exponential with full jitter, so a fleet does not reconnect in lockstep. */

/** First reconnect delay ceiling, ms. */
export const DEFAULT_BACKOFF_INITIAL_MS = 250;
/** Largest reconnect delay, ms. */
export const DEFAULT_BACKOFF_MAX_MS = 30_000;

/** Reconnect delays: first ceiling and largest, ms. */
export interface BackoffOptions {
  initialMs?: number;
  maxMs?: number;
}

/** Doubling delays, each uniform in [ceiling/2, ceiling]; `reset` after a success. */
export class Backoff {
  private attempt = 0;
  private readonly initialMs: number;
  private readonly maxMs: number;

  constructor(o: BackoffOptions = {}) {
    this.initialMs = o.initialMs ?? DEFAULT_BACKOFF_INITIAL_MS;
    this.maxMs = o.maxMs ?? DEFAULT_BACKOFF_MAX_MS;
  }

  /** Next delay: uniform in [ceiling/2, ceiling], ceiling doubling up to the maximum. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  reset(): void {
    this.attempt = 0;
  }
}
