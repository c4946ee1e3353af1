/**
 * Hub metrics in Prometheus format, on a registry of its own per hub (several hubs can live in
 * one process, as in tests). Hot-path counts (bytes relayed) are plain numbers folded into the
 * prom-client counter when scraped, so relaying a message costs an addition, not a label lookup.
 */
import { Counter, Gauge, Registry } from 'prom-client';

/** Outcomes of a stream request, the `outcome` label of `devstreams_stream_requests_total`. */
export type StreamOutcome = 'accepted' | 'rejected' | 'offline' | 'not_found' | 'timeout' | 'rate_limited' | 'error';

export interface HubGaugeSources {
  connectedDevices(): number;
  activeStreams(): number;
}

export class HubMetrics {
  readonly registry = new Registry();
  /** Bytes relayed by the streaming endpoint, both directions; read on scrape. */
  bytesRelayed = 0;
  private bytesReported = 0;
  private readonly streamRequests: Counter<'outcome'>;
  private readonly authFailures: Counter<'endpoint' | 'code'>;
  private readonly refusals: Counter<'reason'>;

  constructor(sources: HubGaugeSources) {
    const registers = [this.registry];
    new Gauge({ name: 'devstreams_connected_devices', help: 'Devices with an open control socket', registers, collect() { this.set(sources.connectedDevices()); } });
    new Gauge({ name: 'devstreams_active_streams', help: 'Streams with both sides paired and relaying', registers, collect() { this.set(sources.activeStreams()); } });
    this.streamRequests = new Counter({ name: 'devstreams_stream_requests_total', help: 'Stream requests by outcome', labelNames: ['outcome'], registers });
    this.authFailures = new Counter({ name: 'devstreams_auth_failures_total', help: 'Refused credentials by endpoint and code', labelNames: ['endpoint', 'code'], registers });
    this.refusals = new Counter({ name: 'devstreams_refused_total', help: 'Clients turned away before their credentials were checked, by reason', labelNames: ['reason'], registers });
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

  refused(reason: string): void {
    this.refusals.inc({ reason });
  }

  authFailure(endpoint: string, code: string): void {
    this.authFailures.inc({ endpoint, code });
  }
}
