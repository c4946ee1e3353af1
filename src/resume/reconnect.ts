/**
 * The initiator's reconnect loop: when its resumable transport suspends, dial a new connection
 * (with backoff and full jitter, so a fleet that lost the same hub does not come back in
 * lockstep) and resume over it, until it resumes, the peer says the session is gone, or the
 * give-up time closes the session.
 */
import { DevstreamsError } from '../errors.js';
import type { Link, ResumableTransport } from './resumable-transport.js';

/** Dial failures that mean the session cannot come back: stop trying at once. */
const FATAL_CODES = new Set([
  'ERR_STREAM_REJECTED',
  'ERR_RESUME_REFUSED',
  'ERR_DEVICE_NOT_FOUND',
  'ERR_AUTH_INVALID',
  'ERR_AUTH_SCOPE',
  'ERR_HANDSHAKE_PEER_KEY_CHANGED',
  'ERR_HANDSHAKE_PEER_UNKNOWN',
]);

/** How the reconnect loop dials and reports. */
export interface ReconnectOptions {
  /** Opens a new connection to the same peer (hub round trip and handshake). */
  dial(): Promise<Link>;
  /** Told about each failed attempt (for logs). */
  onAttemptFailed?(error: Error, attempt: number): void;
}

/** Delay before attempt `n` (0-based): uniform in [c/2, c], c = initial * 2^n capped at max. */
export function reconnectDelay(n: number, initialMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(n, 30));
  return ceiling / 2 + Math.random() * (ceiling / 2);
}

/** Keeps `r` connected: on every 'suspended', runs the loop until resumed or closed. */
export function keepResumed(r: ResumableTransport, o: ReconnectOptions): void {
  let running = false;
  const run = async (): Promise<void> => {
    if (running) return;
    running = true;
    try {
      for (let attempt = 0; r.state === 'suspended'; attempt++) {
        await new Promise((resolve) =>
          setTimeout(resolve, reconnectDelay(attempt, r.config.reconnectInitialMs, r.config.reconnectMaxMs)).unref(),
        );
        if (r.state !== 'suspended') return;
        let link: Link;
        try {
          link = await o.dial();
        } catch (err) {
          o.onAttemptFailed?.(err as Error, attempt);
          if (err instanceof DevstreamsError && FATAL_CODES.has(err.code)) {
            r.lose(new DevstreamsError('ERR_SESSION_LOST', `cannot resume: ${err.message}`, { cause: err }));
            return;
          }
          continue;
        }
        if (r.state !== 'suspended') {
          link.transport.close();
          return;
        }
        try {
          await r.resumeOver(link);
          return;
        } catch (err) {
          o.onAttemptFailed?.(err as Error, attempt);
        }
      }
    } finally {
      running = false;
      // A new drop right after a resume (while this loop was returning) needs a new loop.
      if (r.state === 'suspended') void run();
    }
  };
  r.events.on('suspended', () => void run());
}
