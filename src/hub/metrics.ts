/**
 * Hub metrics in Prometheus format, on a registry of its own per hub (several hubs can live in
 * one process, as in tests). Hot-path counts (bytes relayed) are plain numbers folded into the
 * prom-client counter when scraped, so relaying a message costs an addition, not a label lookup.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { collectRuntimeMetrics } from '../util/runtime-metrics.js';

/**
 * Buckets of the stream-setup histograms, seconds: from a loopback round trip (under 1 ms) to a
 * device on a slow cellular link answering late (tens of seconds, up to the response timeout).
 */
export const SETUP_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** Outcomes of a stream request, the `outcome` label of `devstreams_stream_requests_total`. */
export type StreamOutcome = 'accepted' | 'rejected' | 'offline' | 'not_found' | 'timeout' | 'rate_limited' | 'error';

/** Where the gauges read their values at scrape time (live counts the hub keeps anyway), plus the opt-in process metrics. */
export interface HubGaugeSources {
  connectedDevices(): number;
  activeStreams(): number;
  /**
   * Also export prom-client's default process and Node.js runtime metrics (CPU, memory, heap,
   * event-loop lag, GC, handles). Per process, so only one hub of a process should ask.
   */
  processMetrics?: boolean;
}

/** One hub's Prometheus counters, histograms and gauges, on a registry of its own. */
export class HubMetrics {
  readonly registry = new Registry();
  /** Bytes relayed by the streaming endpoint, both directions; read on scrape. */
  bytesRelayed = 0;
  private bytesReported = 0;
  private readonly streamRequests: Counter<'outcome'>;
  private readonly authFailures: Counter<'endpoint' | 'code'>;
  private readonly refusals: Counter<'reason'>;
  private readonly ringSeconds: Histogram<'outcome'>;
  private readonly pairWaitSeconds: Histogram;

  constructor(sources: HubGaugeSources) {
    const registers = [this.registry];
    new Gauge({
      name: 'devstreams_connected_devices',
      help: 'Devices with an open control socket',
      registers,
      collect() {
        this.set(sources.connectedDevices());
      },
    });
    new Gauge({
      name: 'devstreams_active_streams',
      help: 'Streams with both sides paired and relaying',
      registers,
      collect() {
        this.set(sources.activeStreams());
      },
    });
    this.streamRequests = new Counter({
      name: 'devstreams_stream_requests_total',
      help: 'Stream requests by outcome',
      labelNames: ['outcome'],
      registers,
    });
    this.authFailures = new Counter({
      name: 'devstreams_auth_failures_total',
      help: 'Refused credentials by endpoint and code',
      labelNames: ['endpoint', 'code'],
      registers,
    });
    this.refusals = new Counter({
      name: 'devstreams_refused_total',
      help: 'Clients turned away before their credentials were checked, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.ringSeconds = new Histogram({
      name: 'devstreams_stream_ring_seconds',
      help: 'Stream requests: from ringing the device to its answer, by outcome (accepted, rejected, timeout, offline, error)',
      labelNames: ['outcome'],
      buckets: SETUP_BUCKETS_SECONDS,
      registers,
    });
    this.pairWaitSeconds = new Histogram({
      name: 'devstreams_stream_pair_seconds',
      help: 'Accepted streams: from the first side reaching the streaming endpoint to the second (pairing)',
      buckets: SETUP_BUCKETS_SECONDS,
      registers,
    });
    if (sources.processMetrics) collectRuntimeMetrics(this.registry);
    const self = this;
    new Counter({
      name: 'devstreams_relayed_bytes_total',
      help: 'Bytes relayed between stream sides',
      registers,
      collect() {
        const delta = self.bytesRelayed - self.bytesReported;
        self.bytesReported = self.bytesRelayed;
        if (delta > 0) this.inc(delta);
      },
    });
  }

  streamRequest(outcome: StreamOutcome): void {
    this.streamRequests.inc({ outcome });
  }

  /** A ring of a device on this node took `ms` and ended with `outcome`. */
  ring(outcome: 'accepted' | 'rejected' | 'timeout' | 'offline' | 'rate_limited' | 'error', ms: number): void {
    this.ringSeconds.observe({ outcome }, ms / 1000);
  }

  /** A stream's second side arrived `ms` after its first. */
  paired(ms: number): void {
    this.pairWaitSeconds.observe(ms / 1000);
  }

  refused(reason: string): void {
    this.refusals.inc({ reason });
  }

  authFailure(endpoint: string, code: string): void {
    this.authFailures.inc({ endpoint, code });
  }
}
