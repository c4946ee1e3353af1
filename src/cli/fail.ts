/**
 * How CLI commands fail, one convention for every command: one line on stderr,
 * `devstreams: CODE: what went wrong[: what to do]`, no stack trace, and an exit code that says
 * whose move it is: 2 when the user must change something (flags, config, credentials, names),
 * 1 when something failed at run time (a hub down, a port lost, a crash).
 */
import { DevstreamsError, type ErrorCode } from '../errors.js';
import { writeWaitingLines } from './log-batch.js';

/** Exit code for errors the user fixes: bad flags or config, refused credentials, unknown names. */
export const EXIT_USAGE = 2;
/** Exit code for run-time failures (the hub cannot be reached, something broke). */
export const EXIT_FAILURE = 1;

/** Codes that mean "change what you gave me": they exit with EXIT_USAGE. */
const USAGE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'ERR_USAGE',
  'ERR_CONFIG',
  'ERR_BAD_REQUEST',
  'ERR_CONNECTION_STRING',
  'ERR_AUTH_MISSING',
  'ERR_AUTH_INVALID',
  'ERR_AUTH_SCOPE',
  'ERR_DEVICE_NOT_FOUND',
  'ERR_DEVICE_EXISTS',
  'ERR_HANDSHAKE_PEER_KEY_CHANGED',
]);

/** The exit code for an error, by the convention above. */
export function exitCodeOf(err: unknown): number {
  return err instanceof DevstreamsError && USAGE_CODES.has(err.code) ? EXIT_USAGE : EXIT_FAILURE;
}

/** The one-line message for an error, as `fail` prints it (without the newline). */
export function failureLine(err: unknown): string {
  if (err instanceof DevstreamsError) return `devstreams: ${err.code}: ${err.message}`;
  return `devstreams: ERR_INTERNAL: ${err instanceof Error ? err.message : String(err)}`;
}

/**
 * Prints the failure line and exits; stderr is written synchronously so the line is never lost,
 * after the log lines still waiting in their batch, so that it is the last line.
 */
export function fail(err: unknown): never {
  writeWaitingLines();
  process.stderr.write(`${failureLine(err)}\n`);
  process.exit(exitCodeOf(err));
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
