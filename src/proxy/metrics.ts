/**
 * The service proxy's Prometheus metrics (`service-proxy --metrics-listen`): how long a new
 * connection waits for its channel to the device, how long opening the device stream takes,
 * and connections by outcome and error code, beside the process and Node.js runtime metrics.
 */
import { Counter, Histogram, Registry } from 'prom-client';
import { collectRuntimeMetrics } from '../util/runtime-metrics.js';

/** Buckets of the open-time histograms, seconds: a warm channel on loopback to a cold stream over a slow link. */
export const OPEN_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** The service proxy's metrics (see the module comment) on a registry of its own. */
export class ServiceProxyMetrics {
  readonly registry = new Registry();
  private readonly channelOpen: Histogram;
  private readonly streamOpen: Histogram;
  private readonly connections: Counter<'outcome' | 'code'>;

  constructor() {
    const registers = [this.registry];
    collectRuntimeMetrics(this.registry);
    this.channelOpen = new Histogram({
      name: 'devstreams_channel_open_seconds',
      help: "From a local connection being accepted to the device accepting its channel (includes opening the device stream when none is open; after data from the client, the device answers with the target's first bytes or after up to 5 ms)",
      buckets: OPEN_BUCKETS_SECONDS,
      registers,
    });
    this.streamOpen = new Histogram({
      name: 'devstreams_stream_open_seconds',
      help: 'Opening the device stream: hub request, device answer, both WebSockets, end-to-end handshake',
      buckets: OPEN_BUCKETS_SECONDS,
      registers,
    });
    this.connections = new Counter({
      name: 'devstreams_connections_total',
      help: 'Local connections by outcome (opened, failed, closed) and error code (empty when none)',
      labelNames: ['outcome', 'code'],
      registers,
    });
  }

  channelOpened(ms: number): void {
    this.channelOpen.observe(ms / 1000);
  }

  streamOpened(ms: number): void {
    this.streamOpen.observe(ms / 1000);
  }

  /** `code` comes from our own stable error codes, so the label set stays small. */
  connection(outcome: 'opened' | 'failed' | 'closed', code: string | undefined): void {
    this.connections.inc({ outcome, code: code ?? '' });
  }
}
