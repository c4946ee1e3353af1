/**
 * The CLI's logger (pino) on stderr; stdout is kept for what a script needs. At a terminal the
 * lines are for a person (time, level, message, fields on one line); piped or redirected they
 * are JSON lines for a log collector. `--log-format` picks either explicitly.
 * JSON lines are written in batches (./log-batch.ts).
 */
import { type Command, InvalidArgumentError, Option } from 'commander';
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { LineBatch, nonBlockingStderr } from './log-batch.js';

/** Log level when `--log-level` is not given. */
export const DEFAULT_LOG_LEVEL = 'info';
/** The levels `--log-level` accepts, quietest last. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
/** One of `LOG_LEVELS`. */
export type LogLevel = (typeof LOG_LEVELS)[number];
/** `pretty`: one readable line per record; `json`: one JSON object per line. */
export type LogFormat = 'pretty' | 'json';

/** The parsed `--log-level` and `--log-format` flags. */
export interface LogOptions {
  logLevel?: string;
  logFormat?: LogFormat;
}

/** `--log-level` parser: one of `LOG_LEVELS`, case-insensitive. */
export function parseLogLevel(value: string): LogLevel {
  const v = value.toLowerCase();
  if (!(LOG_LEVELS as readonly string[]).includes(v)) throw new InvalidArgumentError(`expected one of ${LOG_LEVELS.join(', ')}`);
  return v as LogLevel;
}

/** Adds `--log-level` and `--log-format` to a command. */
export function withLogOptions(cmd: Command, defaultLevel: LogLevel = DEFAULT_LOG_LEVEL): Command {
  return cmd
    .option('--log-level <level>', `log level: ${LOG_LEVELS.join(', ')}`, parseLogLevel, defaultLevel)
    .addOption(
      new Option('--log-format <format>', 'log lines on stderr: pretty (default at a terminal) or json (default otherwise)').choices([
        'pretty',
        'json',
      ]),
    );
}

/** The format to use when none is asked for: pretty for a person at a terminal, JSON otherwise. */
export function defaultLogFormat(): LogFormat {
  return process.stderr.isTTY ? 'pretty' : 'json';
}

/** The pino logger on stderr for these flags (or a level): pretty or JSON lines (see the module comment). */
export function createLogger(o: LogOptions | string = {}): Logger {
  const opts: LogOptions = typeof o === 'string' ? { logLevel: o } : o;
  const level = opts.logLevel ?? DEFAULT_LOG_LEVEL;
  if ((opts.logFormat ?? defaultLogFormat()) === 'pretty') {
    const stream = pretty({
      destination: 2,
      sync: true, // a person reads these as they happen; nothing is lost on exit
      colorize: process.stderr.isTTY === true,
      singleLine: true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname',
    });
    return pino({ level }, stream);
  }
  return pino({ level, base: { pid: process.pid } }, new LineBatch(nonBlockingStderr()));
}
