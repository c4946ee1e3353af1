/** How CLI commands fail: one clear line on stderr, a non-zero exit code, no stack trace. */
import { DevstreamsError } from '../errors.js';

/** Exit code for errors the user can fix (bad flags, bad input, refused credentials). */
export const EXIT_USAGE = 2;
/** Exit code for everything else. */
export const EXIT_FAILURE = 1;

export function fail(err: unknown): never {
  if (err instanceof DevstreamsError) {
    process.stderr.write(`devstreams: ${err.code}: ${err.message}\n`);
    process.exit(err.code === 'ERR_CONFIG' || err.code === 'ERR_BAD_REQUEST' || err.code === 'ERR_CONNECTION_STRING' ? EXIT_USAGE : EXIT_FAILURE);
  }
  process.stderr.write(`devstreams: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(EXIT_FAILURE);
}

/** Wraps an async action so that any failure goes through `fail`. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      fail(err);
    }
  };
}
