/** The CLI's structured logger: pino, JSON lines on stderr (stdout is kept for command output). */
import { pino, type Logger } from 'pino';

/** Log level when `--log-level` is not given. */
export const DEFAULT_LOG_LEVEL = 'info';

export function createLogger(level: string = DEFAULT_LOG_LEVEL): Logger {
  return pino({ level, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: false }));
}
