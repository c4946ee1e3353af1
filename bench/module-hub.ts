// Report module of the hub (issue 3): stream setup rate, relay throughput against a bare ws relay,
// RSS per idle device control socket (hub-bench.ts), with the goal rows.
import { hubBenchMarkdown, runHubBench, type HubBenchOptions, type HubBenchResult } from './standalone/hub-bench.js';
import { registerModule, type GoalVerdict } from './report/registry.js';
import type { BenchResults } from './results.js';

/** Bounds of the hub module, quick and full (full = the 10,000 idle devices). */
export const HUB_MODULE_BUDGET: { readonly quick: HubBenchOptions; readonly full: HubBenchOptions } = {
  quick: { setupSeconds: 0.5, setupWarmupSeconds: 0.25, setupRuns: 1, relaySeconds: 0.5, relayRuns: 1, idleDevices: 1_000 },
  full: { setupSeconds: 2, setupWarmupSeconds: 1, setupRuns: 3, relaySeconds: 2, relayRuns: 3, idleDevices: 10_000 },
};
/** Goals as issue 3 states them. */
export const HUB_GOALS = { streamsPerSecond: 500, relayRatio: 0.9, rssPerDeviceKiB: 16 } as const;

function hubGoal(measure: (d: HubBenchResult) => GoalVerdict) {
  return (r: BenchResults): GoalVerdict => {
    const d = r.modules.hub as (HubBenchResult & { error?: string }) | undefined;
    if (d === undefined) return { status: 'not measured', detail: 'hub module not run (--scenarios hub)' };
    if (d.error !== undefined) return { status: 'not measured', detail: `hub module failed: ${d.error}` };
    return measure(d);
  };
}

registerModule({
  id: 'hub',
  title: 'Hub: stream setup rate, relay throughput, memory per idle device (`hub`)',
  order: 60,
  async collect(ctx) {
    ctx.progress(ctx.quick ? 'quick: short phases, 1,000 idle devices' : 'setup rate, relay, 10,000 idle devices');
    return runHubBench(ctx.quick ? HUB_MODULE_BUDGET.quick : HUB_MODULE_BUDGET.full);
  },
  render: (data) => {
    const d = data as HubBenchResult & { error?: string };
    return d.error !== undefined
      ? `not measured: ${d.error}`
      : `Hub and bare relay in child processes, clients in the bench process (\`npm run bench:hub\`).\n\n${hubBenchMarkdown(d).trimEnd()}`;
  },
  goals: [
    {
      id: 'hub-setup-rate',
      text: `Hub: >= ${HUB_GOALS.streamsPerSecond} new streams/s on one hub node`,
      evaluate: hubGoal((d) => ({
        status: d.streamsPerSecond >= HUB_GOALS.streamsPerSecond ? 'met' : 'not met',
        detail: `${d.streamsPerSecond} streams/s end to end (hub CPU ${d.hubCpuMsPerStream} ms per stream)`,
      })),
    },
    {
      id: 'hub-relay-ratio',
      text: `Hub: relay throughput >= ${HUB_GOALS.relayRatio}x a bare ws relay`,
      evaluate: hubGoal((d) => ({
        status: d.relayRatio >= HUB_GOALS.relayRatio ? 'met' : 'not met',
        detail: `${d.hubRelayMBps} vs ${d.bareRelayMBps} MB/s = ${d.relayRatio.toFixed(2)}x`,
      })),
    },
    {
      id: 'hub-rss-per-device',
      text: `Hub: <= ${HUB_GOALS.rssPerDeviceKiB} KiB RSS per idle device control socket`,
      evaluate: hubGoal((d) => ({
        status: d.rssPerDeviceKiB <= HUB_GOALS.rssPerDeviceKiB ? 'met' : 'not met',
        detail: `${d.rssPerDeviceKiB} KiB each over ${d.idleDevices.toLocaleString('en-US')} sockets`,
      })),
    },
  ],
});
