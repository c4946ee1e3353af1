// iperf3 as the bulk load generator: the program people move test bytes with. One `iperf3 -s` on
// the "device" side is a target every path forwards to; the scenarios run `iperf3 -c` through the
// path's local port. A C sender and receiver leave the two cores to the path's own processes,
// where a Node generator would compete with them.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort, spawnChild, waitForLine, type Child } from './procs.js';

const run = promisify(execFile);

/**
 * Retries when the server is still in the previous test: it answers "the server is busy", or,
 * when it is still tearing that test down (a load client killed a moment ago), closes the new
 * control connection, which the client reports as "control socket has closed unexpectedly".
 */
export const IPERF3_BUSY_RETRIES = 5;
/** Pause between those retries. */
export const IPERF3_BUSY_RETRY_MS = 300;
/** Kernel-side connect timeout iperf3 gets, in ms (`--connect-timeout`). */
export const IPERF3_CONNECT_TIMEOUT_MS = 5_000;

/** Why iperf3 cannot run here, or undefined when it can. */
export async function iperf3Unavailable(): Promise<string | undefined> {
  try {
    await run('iperf3', ['--version']);
    return undefined;
  } catch {
    return 'iperf3 not installed (apt-get install -y iperf3)';
  }
}

/** Starts `iperf3 -s` on 127.0.0.1 and a free port. */
export async function startIperf3Server(): Promise<{ child: Child; port: number }> {
  const port = await freePort();
  // Ready when it says so: a probe connection would count as a test client and leave the server
  // resetting the next real one.
  const child = spawnChild('iperf3', ['-s', '-B', '127.0.0.1', '-p', String(port), '--forceflush']);
  try {
    await waitForLine(
      child,
      'stdout',
      (line) => (line.includes('Server listening') ? true : undefined),
      undefined,
      'iperf3 "Server listening"',
    );
  } catch (err) {
    await child.stop();
    throw err;
  }
  return { child, port };
}

export interface Iperf3Result {
  /** Bytes the server received (in the counted time: after any omitted start). */
  readonly bytes: number;
  /** Bytes the client sent over the whole run, omitted start included (for CPU per GiB). */
  readonly totalBytes?: number;
  /** Seconds the server received for. */
  readonly seconds: number;
  readonly MBps: number;
  /**
   * CPU seconds of iperf3's own two ends (client and server) over the run, from the utilization
   * iperf3 reports: on a machine whose cores are all busy, what the ends take is not the path's.
   */
  readonly endpointCpuSeconds?: number;
}

interface Iperf3Json {
  readonly error?: string;
  readonly intervals?: ReadonlyArray<{ readonly sum?: { readonly bytes?: number } }>;
  readonly end?: {
    readonly sum_received?: { readonly bytes?: number; readonly seconds?: number };
    readonly sum_sent?: { readonly bytes?: number; readonly seconds?: number };
    /** Percent of one core over the test, client (host) and server (remote). */
    readonly cpu_utilization_percent?: { readonly host_total?: number; readonly remote_total?: number };
  };
}

/** CPU seconds of both iperf3 ends, if the JSON reports their utilization. */
function endpointCpuSeconds(j: Iperf3Json): number | undefined {
  const u = j.end?.cpu_utilization_percent;
  const sent = j.end?.sum_sent?.seconds;
  const received = j.end?.sum_received?.seconds;
  if (u?.host_total === undefined || u.remote_total === undefined || sent === undefined || received === undefined) return undefined;
  return (u.host_total * sent + u.remote_total * received) / 100;
}

/** How much an iperf3 client sends: a byte count (-n) or a duration (-t). */
export type Iperf3Amount = { readonly bytes: number } | { readonly seconds: number };

/**
 * One iperf3 client run through `port` over `parallel` connections (-P), killed at `timeoutMs`.
 * The rate is the server's: bytes received over its receive time. A capped link wants a duration:
 * with a byte count the client is done once its bytes sit in buffers, and the server stops
 * counting at that moment (its "end" message overtakes the queued data).
 */
export async function iperf3Send(
  port: number,
  amount: Iperf3Amount,
  parallel: number,
  timeoutMs: number,
  omitSeconds = 0,
): Promise<Iperf3Result> {
  const size = 'bytes' in amount ? ['-n', String(amount.bytes)] : ['-t', String(amount.seconds)];
  // -O: the first seconds run but are left out of the summary (iperf3's way past slow start).
  if (omitSeconds > 0) size.push('-O', String(omitSeconds));
  const args = [
    '-c',
    '127.0.0.1',
    '-p',
    String(port),
    ...size,
    '-P',
    String(parallel),
    '-J',
    '--connect-timeout',
    String(IPERF3_CONNECT_TIMEOUT_MS),
  ];
  let last = '';
  for (let attempt = 0; attempt <= IPERF3_BUSY_RETRIES; attempt++) {
    let stdout: string;
    try {
      ({ stdout } = await run('iperf3', args, { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024, killSignal: 'SIGKILL' }));
    } catch (err) {
      // iperf3 exits 1 with its JSON (error field) on stdout.
      const e = err as { stdout?: string; killed?: boolean; message: string };
      if (e.killed === true) throw new Error(`iperf3 did not finish within ${timeoutMs} ms`);
      stdout = e.stdout ?? '';
      if (stdout === '') throw new Error(`iperf3: ${e.message.split('\n')[0] ?? 'failed'}`);
    }
    const j = JSON.parse(stdout) as Iperf3Json;
    if (j.error !== undefined) {
      last = j.error;
      if (/busy|reset by peer|control socket has closed/i.test(j.error)) {
        await new Promise((r) => setTimeout(r, IPERF3_BUSY_RETRY_MS));
        continue;
      }
      throw new Error(`iperf3: ${j.error}`);
    }
    const got = j.end?.sum_received;
    if (got?.bytes === undefined || got.seconds === undefined || got.seconds <= 0)
      throw new Error('iperf3: no receiver summary in its JSON');
    const total = (j.intervals ?? []).reduce((n, i) => n + (i.sum?.bytes ?? 0), 0);
    const ends = endpointCpuSeconds(j);
    return {
      bytes: got.bytes,
      seconds: got.seconds,
      MBps: got.bytes / 1e6 / got.seconds,
      totalBytes: Math.max(total, got.bytes),
      ...(ends !== undefined ? { endpointCpuSeconds: ends } : {}),
    };
  }
  throw new Error(`iperf3: ${last}`);
}

/** A long-running iperf3 client (load of the interactive scenario); `finish()` stops it and reads its rate. */
export interface Iperf3Load {
  readonly child: Child;
  /**
   * Stops the client (SIGTERM: it still prints its JSON summary) and returns its send rate, if it
   * printed one (the server's side of an interrupted test is not reported back).
   */
  finish(): Promise<Iperf3Result | undefined>;
}

/**
 * Starts `iperf3 -c` through `port` for at most `seconds`; `bitrate` (iperf3's `-b`, e.g. `800M` =
 * 800 Mbit/s = 100 MB/s) paces it at a fixed rate, else it sends as fast as the path takes.
 */
export function iperf3Load(port: number, seconds: number, bitrate?: string): Iperf3Load {
  const child = spawnChild('iperf3', [
    '-c',
    '127.0.0.1',
    '-p',
    String(port),
    '-t',
    String(seconds),
    ...(bitrate === undefined ? [] : ['-b', bitrate]),
    '-J',
    '--connect-timeout',
    String(IPERF3_CONNECT_TIMEOUT_MS),
  ]);
  let out = '';
  child.proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return {
    child,
    async finish() {
      await child.stop();
      try {
        const got = (JSON.parse(out) as Iperf3Json).end?.sum_sent;
        if (got?.bytes === undefined || got.seconds === undefined || got.seconds <= 0) return undefined;
        return { bytes: got.bytes, seconds: got.seconds, MBps: got.bytes / 1e6 / got.seconds };
      } catch {
        return undefined;
      }
    },
  };
}
