/** The hub's one logger shape: pino's (fields first, then the message). */

/** The logging calls the hub makes; a pino logger fits. */
export interface HubLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A logger that drops everything (the default when none is given). */
export const SILENT_LOGGER: HubLogger = { info() {}, warn() {}, error() {} };
