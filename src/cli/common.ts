/** Flag parsing and process plumbing shared by the proxy commands. */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import type { Logger } from 'pino';
import type { CryptoMode } from '../crypto/index.js';
import { decodePublicKey } from '../crypto/index.js';
import { DevstreamsError } from '../errors.js';
import { dialHost, parseConnectionString } from '../auth/index.js';
import { fetchPinnedCertificate } from '../transport/index.js';
import { delayControlledResume, type ResumeConfig } from '../resume/index.js';
import { readSecretFile, warnLine } from './secret-file.js';

/** Environment variable that may hold the connection string instead of the flag. */
export const CONNECTION_STRING_ENV = 'DEVSTREAMS_CONNECTION_STRING';

/** commander collector for repeatable flags. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `--crypto` parser: where records are sealed. */
export function parseCryptoMode(value: string): CryptoMode {
  if (value !== 'inline' && value !== 'workers' && value !== 'auto') throw new InvalidArgumentError('expected inline, workers or auto');
  return value;
}

/** Parses a positive number of seconds (fractions allowed), as milliseconds. */
export function parsePositiveMs(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number of seconds');
  return Math.round(n * 1000);
}

/** Parses a positive safe integer; commander shows the message on a bad value. */
export function parsePositiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/** A delay for a log line: "0.4 s", "2 s", "30 s". */
export function formatSeconds(ms: number): string {
  return ms < 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`;
}

/** A byte count as a person reads it: 512 B, 12.3 kB, 4.1 MB, 2.00 GB (decimal units). */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${v < 10 ? v.toFixed(2) : v < 100 ? v.toFixed(1) : v.toFixed(0)} ${units[u]}`;
}

/** A connection's closing summary: how long it lasted and what it carried each way. */
export function connectionSummary(stats: { durationMs: number; bytesIn: number; bytesOut: number }): string {
  const d = stats.durationMs < 1000 ? `${Math.round(stats.durationMs)} ms` : `${(stats.durationMs / 1000).toFixed(1)} s`;
  return `after ${d}, ${formatBytes(stats.bytesIn)} in, ${formatBytes(stats.bytesOut)} out`;
}

/** Environment variable that may name a file holding the connection string. */
export const CONNECTION_STRING_FILE_ENV = 'DEVSTREAMS_CONNECTION_STRING_FILE';

/** The connection-string flags every command that dials the hub takes. */
export interface ConnectionStringFlags {
  connectionString?: string;
  connectionStringFile?: string;
}

/**
 * The connection string from --connection-string-file, else the flag (visible in `ps` to every
 * local user, so the help steers to the file), else the environment (file, then string), else
 * a clear error. A file readable by others gets a warning through `warn`.
 */
export function connectionStringFrom(o: ConnectionStringFlags, warn: (line: string) => void = warnLine): string {
  if (o.connectionString !== undefined && o.connectionStringFile !== undefined) {
    throw new DevstreamsError('ERR_CONFIG', 'give one of --connection-string and --connection-string-file');
  }
  const file = o.connectionStringFile ?? (o.connectionString === undefined ? process.env[CONNECTION_STRING_FILE_ENV] : undefined);
  const cs =
    file !== undefined && file !== ''
      ? readSecretFile(file, 'connection string file', warn)
      : (o.connectionString ?? process.env[CONNECTION_STRING_ENV]);
  if (!cs)
    throw new DevstreamsError(
      'ERR_CONNECTION_STRING',
      `no connection string: pass --connection-string-file FILE (or --connection-string), or set ${CONNECTION_STRING_FILE_ENV} or ${CONNECTION_STRING_ENV}`,
    );
  return cs;
}

/** The proxies' delay-controller option (both ends set it: one runs the controller, the other ACKs by bytes). */
export const QUEUE_TARGET_FLAG = '--queue-target-ms <ms>';
/** `--queue-target-ms`'s help text, the same for both proxies. */
export const QUEUE_TARGET_HELP =
  'interactive first: keep at most about this much queueing delay on the path (a delay-based controller; 1 suits loopback and LANs) at some cost in bulk throughput; set it on both proxies. Default: the controller (target 1 ms) counts only while an interactive channel talks beside a transfer';

/** The proxies' pacing option (each end paces what it sends). */
export const PACE_PERCENT_FLAG = '--pace-percent <n>';
/** `--pace-percent`'s help text, the same for both proxies. */
export const PACE_PERCENT_HELP =
  'while an interactive channel keeps talking beside a transfer, send the transfer at this percentage of what the path delivers (0-100, 0: never pace), so the tunnel processes keep some idle time and keystrokes are not kept waiting (about half the loaded median round trip, at some cost in bulk throughput); default 0';

/** `--pace-percent` parser: an integer from 0 to 100. */
export function parsePercent(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0 || n > 100) throw new InvalidArgumentError('expected an integer from 0 to 100');
  return n;
}

/**
 * The resume limits `--queue-target-ms` and `--pace-percent` ask for; undefined (the defaults)
 * when neither is given.
 */
export function resumeFromFlags(queueTargetMs: number | undefined, pacePercent?: number): Partial<ResumeConfig> | undefined {
  if (queueTargetMs === undefined && pacePercent === undefined) return undefined;
  return {
    ...(queueTargetMs === undefined ? {} : delayControlledResume(queueTargetMs)),
    ...(pacePercent === undefined ? {} : { interactivePacePercent: pacePercent }),
  };
}

/** Adds --connection-string-file and --connection-string to `cmd`; `kind` is "device" or "service". */
export function connectionStringOptions(cmd: Command, kind: string): Command {
  return cmd
    .option(
      '--connection-string-file <file>',
      `file holding the ${kind} connection string (or set ${CONNECTION_STRING_FILE_ENV}); keep it mode 600`,
    )
    .option(
      '--connection-string <cs>',
      `the ${kind} connection string itself (or set ${CONNECTION_STRING_ENV}); other local users can read it in ps, prefer the file`,
    );
}

/** Pause between probes for a pinned hub certificate while the hub cannot be reached (device proxy). */
export const PIN_PROBE_RETRY_MS = 5_000;

/**
 * What the client trusts for the hub's TLS: --ca FILE when given, else the certificate the
 * connection string pins (HubCertSha256), fetched and checked once here, else the system CAs.
 * With `retry`, an unreachable hub is tried again every PIN_PROBE_RETRY_MS (a device proxy
 * waits for its hub as it does without a pin); a different certificate fails at once.
 */
export async function hubTrust(
  connectionString: string,
  caPath: string | undefined,
  retry?: (err: Error) => void,
): Promise<{ ca?: Buffer }> {
  if (caPath !== undefined) return readCa(caPath);
  const cs = parseConnectionString(connectionString);
  if (cs.hubCertSha256 === undefined) return {};
  for (;;) {
    try {
      return { ca: await fetchPinnedCertificate(dialHost(cs), cs.hubCertSha256) };
    } catch (err) {
      if (!retry || (err as DevstreamsError).code !== 'ERR_HUB_UNAVAILABLE') throw err;
      retry(err as Error);
      await new Promise((resolve) => setTimeout(resolve, PIN_PROBE_RETRY_MS));
    }
  }
}

/** Reads a `--ca` file as the `ca` option of a hub client; ERR_CONFIG naming the file when it cannot. */
export function readCa(path: string | undefined): { ca?: Buffer } {
  if (path === undefined) return {};
  try {
    return { ca: readFileSync(path) };
  } catch (err) {
    throw new DevstreamsError('ERR_CONFIG', `cannot read --ca ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Decodes repeated base64 X25519 key flags; ERR_CONFIG names the flag and the bad value. */
export function parsePublicKeys(values: string[] | undefined, flag: string): Buffer[] {
  return (values ?? []).map((v) => {
    try {
      return decodePublicKey(v);
    } catch {
      throw new DevstreamsError('ERR_CONFIG', `bad ${flag} "${v}": expected a base64 X25519 public key (32 bytes)`);
    }
  });
}

/**
 * Runs `stop` once on SIGINT/SIGTERM, then exits 0; a second signal exits at once (130). When
 * connections are still open, says how many the stop waits for and how to force it, at warn so
 * that it shows at every default level: a silent wait looks like a hang. Logs are flushed first
 * so the last lines are not lost.
 */
export function onShutdown(log: Logger, stop: () => Promise<void>, openConnections?: () => number): void {
  let stopping = false;
  const handler = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, 'forced stop');
      log.flush();
      process.exit(130);
    }
    stopping = true;
    const open = openConnections?.() ?? 0;
    if (open > 0)
      log.warn(
        { signal, open },
        `stopping: waiting for ${open} connection${open === 1 ? '' : 's'} to close; ${signal === 'SIGINT' ? 'Ctrl-C' : 'signal'} again to force`,
      );
    else log.info({ signal }, 'stopping: closing channels gracefully (signal again to force)');
    stop().then(
      () => {
        log.flush();
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'stop failed');
        log.flush();
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => handler('SIGINT'));
  process.on('SIGTERM', () => handler('SIGTERM'));
}
