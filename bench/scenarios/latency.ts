// Latency scenarios: 64-byte request/response round trips, an interactive connection's round trips
// while a bulk transfer saturates the same path (head-of-line blocking), and time to first byte of
// a new connection (through the open stream, and a cold one when the path can make it cold).
import { RTT_PAYLOAD_BYTES, RTT_WARMUP } from '../config.js';
import { iperf3Load, iperf3Unavailable } from '../iperf3.js';
import { percentiles } from '../stats.js';
import { benchScript, spawnNodeReady } from '../procs.js';
import { EchoClient, timeToFirstByte } from './net.js';
import type { Metrics, Scenario, ScenarioContext } from './types.js';

const PAYLOAD = Buffer.alloc(RTT_PAYLOAD_BYTES, 0x61);
/** Bulk head start before interactive samples begin, so the path is saturated. */
export const INTERACTIVE_BULK_LEAD_MS = 300;
/** Pause between interactive round trips (a typist, not a flood). */
export const INTERACTIVE_GAP_MS = 1;
/** Cold TTFB samples when the path supports makeCold (each costs a stream setup). */
export const TTFB_COLD_SAMPLES = 3;

/** Up to `count` sequential round trips, bounded by the time limit; returns samples in us. */
async function roundTrips(
  client: EchoClient,
  count: number,
  timeoutMs: number,
  gapMs = 0,
  onTick?: (i: number) => void,
): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  const out: number[] = [];
  for (let i = 0; i < count && Date.now() < deadline; i++) {
    out.push(await client.roundTrip(PAYLOAD, timeoutMs));
    if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
    onTick?.(i);
  }
  return out;
}

/**
 * The interactive round trips beside a load: after the load's head start (INTERACTIVE_BULK_LEAD_MS),
 * one every INTERACTIVE_GAP_MS, progress named by `beside`.
 */
async function roundTripsBesideLoad(ctx: ScenarioContext, client: EchoClient, beside: string): Promise<number[]> {
  await new Promise((r) => setTimeout(r, INTERACTIVE_BULK_LEAD_MS));
  const n = ctx.budget.interactiveSamples;
  return roundTrips(client, n, ctx.budget.latencyTimeoutMs, INTERACTIVE_GAP_MS, (i) => {
    if (i % Math.max(1, Math.floor(n / 4)) === 0) ctx.progress(`${i}/${n} round trips ${beside}`);
  });
}

function usMetrics(samples: number[], prefix = ''): Metrics {
  const p = percentiles(samples);
  return { [`${prefix}p50_us`]: p.p50, [`${prefix}p90_us`]: p.p90, [`${prefix}p99_us`]: p.p99, [`${prefix}samples`]: p.n };
}

export const rtt64: Scenario = {
  id: 'rtt',
  title: `${RTT_PAYLOAD_BYTES}-byte request/response round trips (on loopback after ${RTT_WARMUP} warm-up round trips, the same for every path)`,
  placements: 'all',
  columns: [
    { metric: 'p50_us', label: 'p50 us', digits: 0 },
    { metric: 'p90_us', label: 'p90 us', digits: 0 },
    { metric: 'p99_us', label: 'p99 us', digits: 0 },
    { metric: 'legs_ms', label: 'legs RTT ms', digits: 1 },
    { metric: 'over_legs_ms', label: 'p50 - legs ms', digits: 2 },
  ],
  primary: { metric: 'p50_us', higherIsBetter: false },
  async run(ctx: ScenarioContext) {
    const n = ctx.placement.loopback ? ctx.budget.rttSamples : ctx.budget.rttSamplesEmulated;
    const warm = ctx.placement.loopback ? RTT_WARMUP : 2;
    const client = await EchoClient.open(ctx.path.ports.echo);
    try {
      await roundTrips(client, warm, ctx.budget.latencyTimeoutMs);
      const samples = await roundTrips(client, n, ctx.budget.latencyTimeoutMs, 0, (i) => {
        if (i % Math.max(1, Math.floor(n / 4)) === 0) ctx.progress(`${i}/${n} round trips`);
      });
      const metrics = usMetrics(samples);
      if (ctx.path.nominalRttMs > 0) {
        metrics.legs_ms = ctx.path.nominalRttMs;
        metrics.over_legs_ms = (metrics.p50_us as number) / 1000 - ctx.path.nominalRttMs;
      }
      return { metrics, partial: samples.length < n };
    } finally {
      client.close();
    }
  },
};

export const interactiveUnderBulk: Scenario = {
  id: 'interactive',
  title: 'Interactive round trips while bulk (iperf3) saturates the path',
  placements: 'loopback',
  columns: [
    { metric: 'idle_p50_us', label: 'idle p50 us', digits: 0 },
    { metric: 'p50_us', label: 'loaded p50 us', digits: 0 },
    { metric: 'p99_us', label: 'loaded p99 us', digits: 0 },
    { metric: 'bulk_MBps', label: 'bulk MB/s', digits: 1 },
  ],
  primary: { metric: 'p99_us', higherIsBetter: false },
  async run(ctx: ScenarioContext) {
    const client = await EchoClient.open(ctx.path.ports.echo);
    let stopLoad: (() => Promise<void>) | undefined;
    try {
      const idle = await roundTrips(client, Math.min(100, ctx.budget.interactiveSamples), ctx.budget.latencyTimeoutMs);
      // The saturating sender is its own process (in the driver it would delay our own reads):
      // iperf3 where installed, else the bench's Node sender to the sink.
      const useIperf = (await iperf3Unavailable()) === undefined;
      let finishLoad: () => Promise<{ bytes: number; seconds: number } | undefined>;
      if (useIperf) {
        const load = iperf3Load(ctx.path.ports.iperf, Math.ceil((ctx.budget.bulkTimeoutMs + ctx.budget.latencyTimeoutMs) / 1000));
        stopLoad = () => load.child.stop();
        finishLoad = () => load.finish();
      } else {
        const bulk = await spawnNodeReady(benchScript('procs/bulk-main.js'), [
          String(ctx.path.ports.sink),
          String(ctx.budget.bulkTimeoutMs + ctx.budget.latencyTimeoutMs),
        ]);
        stopLoad = () => bulk.child.stop();
        const bulkDone = new Promise<{ bytes: number; seconds: number } | undefined>((resolve) => {
          let buf = '';
          bulk.child.proc.stdout?.on('data', (d: Buffer) => {
            buf += d.toString();
            const lines = buf.split('\n').filter(Boolean);
            const last = lines[lines.length - 1];
            if (lines.length >= 1 && last !== undefined && last.includes('bytes'))
              resolve(JSON.parse(last) as { bytes: number; seconds: number });
          });
          bulk.child.proc.once('exit', () => resolve(undefined));
        });
        finishLoad = async () => {
          await bulk.child.stop();
          return bulkDone;
        };
      }
      // Past the run's bound the load stops at once, not when a stuck wait below returns.
      ctx.signal?.addEventListener('abort', () => void stopLoad?.(), { once: true });
      const loaded = await roundTripsBesideLoad(ctx, client, `under ${useIperf ? 'iperf3' : 'Node'} bulk`);
      const b = await finishLoad();
      const idleP = percentiles(idle);
      const metrics: Metrics = { ...usMetrics(loaded), idle_p50_us: idleP.p50, idle_p99_us: idleP.p99 };
      if (b !== undefined && b.seconds > 0) metrics.bulk_MBps = b.bytes / 1e6 / b.seconds;
      return { metrics, partial: loaded.length < ctx.budget.interactiveSamples };
    } finally {
      await stopLoad?.();
      client.close();
    }
  },
};

/** iperf3's `-b` for the fixed-load row: 800 Mbit/s = 100 MB/s, a fast real link (issue 19 goal 1a). */
export const FIXED_LOAD_BITRATE = '800M';
/** The same rate in MB/s, for titles. */
export const FIXED_LOAD_MBPS = 100;
/** How long the fixed load runs alone first, to learn what it moves without the interactive connection. */
export const FIXED_LOAD_ALONE_MS = 1_000;

/**
 * Interactive round trips while iperf3 sends at a fixed 100 MB/s through the same path (the same
 * device stream, on the tunnel). Each run first lets the load run alone for FIXED_LOAD_ALONE_MS
 * and reads its send rate, then runs it again with the interactive connection beside it: the
 * share it keeps is `kept_pct`. Both rates are iperf3's client send rate (the same measure).
 */
export const interactiveFixedLoad: Scenario = {
  id: 'interactive-100',
  title: `Interactive round trips while iperf3 sends a fixed ${FIXED_LOAD_MBPS} MB/s (-b ${FIXED_LOAD_BITRATE}) through the path`,
  placements: 'loopback',
  columns: [
    { metric: 'p50_us', label: 'loaded p50 us', digits: 0 },
    { metric: 'p99_us', label: 'loaded p99 us', digits: 0 },
    { metric: 'bulk_MBps', label: 'bulk MB/s', digits: 1 },
    { metric: 'alone_MBps', label: 'bulk alone MB/s', digits: 1 },
    { metric: 'kept_pct', label: 'bulk kept %', digits: 0 },
  ],
  primary: { metric: 'p99_us', higherIsBetter: false },
  unavailableReason: iperf3Unavailable,
  async run(ctx: ScenarioContext) {
    const maxSeconds = Math.ceil((ctx.budget.bulkTimeoutMs + ctx.budget.latencyTimeoutMs) / 1000);
    let stop: (() => Promise<void>) | undefined;
    ctx.signal?.addEventListener('abort', () => void stop?.(), { once: true });
    // Alone: the same client, the same rate, nothing beside it.
    const alone = iperf3Load(ctx.path.ports.iperf, maxSeconds, FIXED_LOAD_BITRATE);
    stop = () => alone.child.stop();
    await new Promise((r) => setTimeout(r, FIXED_LOAD_ALONE_MS));
    const a = await alone.finish();
    const client = await EchoClient.open(ctx.path.ports.echo);
    try {
      const load = iperf3Load(ctx.path.ports.iperf, maxSeconds, FIXED_LOAD_BITRATE);
      stop = () => load.child.stop();
      const loaded = await roundTripsBesideLoad(ctx, client, `beside ${FIXED_LOAD_MBPS} MB/s of iperf3`);
      const b = await load.finish();
      const metrics: Metrics = usMetrics(loaded);
      if (b !== undefined) metrics.bulk_MBps = b.MBps;
      if (a !== undefined) metrics.alone_MBps = a.MBps;
      if (a !== undefined && b !== undefined && a.MBps > 0) metrics.kept_pct = (b.MBps / a.MBps) * 100;
      return { metrics, partial: loaded.length < ctx.budget.interactiveSamples };
    } finally {
      await stop?.();
      client.close();
    }
  },
};

export const ttfb: Scenario = {
  id: 'ttfb',
  title: 'Time to first byte of a new connection',
  placements: 'all',
  columns: [
    { metric: 'p50_ms', label: 'open p50 ms', digits: 2 },
    { metric: 'p99_ms', label: 'open p99 ms', digits: 2 },
    { metric: 'cold_p50_ms', label: 'cold p50 ms', digits: 1 },
    { metric: 'path_rtt_ms', label: 'path RTT ms', digits: 1 },
  ],
  primary: { metric: 'p50_ms', higherIsBetter: false },
  async run(ctx: ScenarioContext) {
    const n = ctx.placement.loopback ? ctx.budget.ttfbSamples : Math.max(3, Math.round(ctx.budget.ttfbSamples / 5));
    const deadline = Date.now() + ctx.budget.latencyTimeoutMs;
    const open: number[] = [];
    await timeToFirstByte(ctx.path.ports.echo, ctx.budget.latencyTimeoutMs); // warm-up (opens a lazy stream)
    for (let i = 0; i < n && Date.now() < deadline; i++) open.push(await timeToFirstByte(ctx.path.ports.echo, ctx.budget.latencyTimeoutMs));
    const p = percentiles(open);
    const metrics: Metrics = { p50_ms: p.p50, p99_ms: p.p99, samples: p.n };
    if (ctx.path.nominalRttMs > 0) metrics.path_rtt_ms = ctx.path.nominalRttMs;
    let note: string | undefined;
    if (ctx.path.makeCold !== undefined) {
      // A failed cold connection is a finding, not a reason to lose the open-stream figures.
      const cold: number[] = [];
      const failures: string[] = [];
      for (let i = 0; i < TTFB_COLD_SAMPLES && Date.now() < deadline; i++) {
        await ctx.path.makeCold();
        try {
          cold.push(await timeToFirstByte(ctx.path.ports.echo, ctx.budget.latencyTimeoutMs));
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
      if (cold.length > 0) metrics.cold_p50_ms = percentiles(cold).p50;
      metrics.cold_failures = failures.length;
      if (failures.length > 0)
        note = `${failures.length} of ${cold.length + failures.length} first connections on a cold stream failed (${[...new Set(failures)].join('; ')})`;
    }
    return { metrics, partial: open.length < n, ...(note !== undefined ? { note } : {}) };
  },
};
