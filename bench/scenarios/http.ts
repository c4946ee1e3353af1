// HTTP through the path: autocannon against the node:http target, requests/s and latency percentiles.
import autocannon from 'autocannon';
import type { Scenario } from './types.js';

/** Requests sent before measuring. */
export const HTTP_WARMUP_REQUESTS = 2_000;

export const httpLoad: Scenario = {
  id: 'http',
  title: 'HTTP requests through the path (autocannon)',
  placements: 'loopback',
  columns: [
    { metric: 'rps', label: 'req/s', digits: 0 },
    { metric: 'p50_ms', label: 'p50 ms', digits: 1 },
    { metric: 'p99_ms', label: 'p99 ms', digits: 1 },
    { metric: 'errors', label: 'errors', digits: 0 },
  ],
  primary: { metric: 'rps', higherIsBetter: true },
  async run(ctx) {
    // Warm-up: JIT of the target, the path and autocannon itself, and the path's connections.
    await autocannon({
      url: `http://127.0.0.1:${ctx.path.ports.http}/`,
      connections: ctx.budget.httpConnections,
      amount: HTTP_WARMUP_REQUESTS,
      timeout: 10,
    });
    ctx.progress(`${ctx.budget.httpConnections} connections, ${ctx.budget.httpSeconds} s`);
    const r = await autocannon({
      url: `http://127.0.0.1:${ctx.path.ports.http}/`,
      connections: ctx.budget.httpConnections,
      duration: ctx.budget.httpSeconds,
      timeout: 10,
    });
    return {
      metrics: {
        rps: r.requests.average,
        p50_ms: r.latency.p50,
        p99_ms: r.latency.p99,
        errors: r.errors + r.timeouts + r.non2xx,
      },
    };
  },
};
