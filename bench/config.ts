// Bench limits and sizes: every named knob of `npm run bench`, with its default, in one place.

/** Sizes and time bounds for one bench mode (quick = CI smoke, full = the committed RESULTS.md). */
export interface BenchBudget {
  /**
   * Paired rounds on loopback: every scenario runs its paths A B C, A B C, ... this many times, so
   * each ratio is taken between paths run side by side and reported with its spread over rounds.
   */
  readonly rounds: number;
  /** Paired rounds on an emulated placement (each round there costs seconds of emulated delay). */
  readonly roundsEmulated: number;
  /** Bytes sent by the one-connection bulk scenario on an uncapped (loopback) link. */
  readonly bulkBytes: number;
  /** Bytes sent by each of the 8 connections of the multi-connection bulk scenario. */
  readonly bulkBytesPerConn: number;
  /** Seconds of traffic aimed at on a capped link (bytes = capacity x this, up to bulkBytes). */
  readonly bulkCappedSeconds: number;
  /**
   * Seconds the 8-connection iperf3 row (`bulk-8`, loopback) counts, after BULK_MULTI_OMIT_SECONDS
   * it runs but leaves out: a byte count of 8 x 16 MiB lasted 0.3-1.6 s, most of it the start
   * of 8 fresh connections, so one stall decided the row.
   */
  readonly bulkMultiSeconds: number;
  /** Hard time limit of one bulk run, in ms; a run that hits it is reported as partial. */
  readonly bulkTimeoutMs: number;
  /** 64-byte round trips measured on loopback (after warm-up). */
  readonly rttSamples: number;
  /** 64-byte round trips measured on an emulated placement. */
  readonly rttSamplesEmulated: number;
  /** Round trips measured on the interactive connection while bulk runs. */
  readonly interactiveSamples: number;
  /** New connections opened to measure time to first byte. */
  readonly ttfbSamples: number;
  /** Seconds autocannon runs against the HTTP target. */
  readonly httpSeconds: number;
  /** Concurrent autocannon connections. */
  readonly httpConnections: number;
  /** Time limit of any single latency loop, in ms. */
  readonly latencyTimeoutMs: number;
  /**
   * Bound on one scenario run (one path, one round), setup and teardown included: past it the run
   * is recorded as failed ("timed out: ...") and the bench goes on. Far above a healthy run.
   */
  readonly scenarioRunTimeoutMs: number;
  /** Bound on one report module (mux, hub, crypto, trace, ...), the same way. */
  readonly moduleTimeoutMs: number;
  /** Bound on starting one path (its processes, their ready lines, the first stream). */
  readonly pathStartTimeoutMs: number;
}

// Per round: a full run repeats these 5 times on loopback and 3 times per emulated placement, in
// about 15 minutes on a 2-core machine.
export const FULL_BUDGET: BenchBudget = {
  rounds: 5,
  roundsEmulated: 3,
  bulkBytes: 256 * 1024 * 1024,
  bulkBytesPerConn: 16 * 1024 * 1024,
  bulkCappedSeconds: 3,
  bulkMultiSeconds: 2,
  bulkTimeoutMs: 20_000,
  rttSamples: 2_000,
  rttSamplesEmulated: 15,
  interactiveSamples: 300,
  ttfbSamples: 25,
  httpSeconds: 2,
  httpConnections: 16,
  latencyTimeoutMs: 10_000,
  scenarioRunTimeoutMs: 120_000,
  moduleTimeoutMs: 300_000,
  pathStartTimeoutMs: 60_000,
};

export const QUICK_BUDGET: BenchBudget = {
  rounds: 2,
  roundsEmulated: 1,
  bulkBytes: 64 * 1024 * 1024,
  bulkBytesPerConn: 8 * 1024 * 1024,
  bulkCappedSeconds: 2,
  bulkMultiSeconds: 1,
  bulkTimeoutMs: 8_000,
  rttSamples: 500,
  rttSamplesEmulated: 8,
  interactiveSamples: 200,
  ttfbSamples: 10,
  httpSeconds: 1,
  httpConnections: 8,
  latencyTimeoutMs: 8_000,
  scenarioRunTimeoutMs: 60_000,
  moduleTimeoutMs: 120_000,
  pathStartTimeoutMs: 60_000,
};

/** Seconds the 8-connection iperf3 row runs before it counts (`iperf3 -O`), on every path alike. */
export const BULK_MULTI_OMIT_SECONDS = 1;
/** Size of one write of the bulk sender (a typical socket read/write chunk). */
export const BULK_CHUNK_BYTES = 64 * 1024;
/** Payload of one request/response round trip. */
export const RTT_PAYLOAD_BYTES = 64;
/**
 * Round trips thrown away before measuring on loopback (TCP windows, ssh channel open, and the
 * JIT: a Node process optimizes its per-message code over the first thousands of messages, and
 * a proxy lives far longer than that). Every path gets the same warm-up; RESULTS.md says so.
 */
export const RTT_WARMUP = 2000;
/** How long a child process may take to print its ready line or open its port. */
export const PROCESS_READY_TIMEOUT_MS = 15_000;
/** How long a child process gets to exit after SIGTERM before SIGKILL. */
export const PROCESS_STOP_TIMEOUT_MS = 5_000;
/** How long a child gets to be reaped after SIGKILL before the bench stops waiting for it (and says so). */
export const PROCESS_KILL_WAIT_MS = 5_000;
/** Bound on stopping one path or target (each of its children gets SIGTERM, then SIGKILL). */
export const PATH_STOP_TIMEOUT_MS = 30_000;
/** Interval of /proc sampling of path processes (peak RSS between endpoint readings). */
export const SAMPLE_INTERVAL_MS = 200;
/** How long a profiled (clinic) child gets to write its report after SIGINT. */
export const PROFILE_STOP_TIMEOUT_MS = 180_000;
