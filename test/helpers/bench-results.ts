// A made-up bench run for report tests: one loopback placement, no records, unless `over` says so.
import { PLACEMENTS } from '../../bench/placements.js';
import type { BenchResults } from '../../bench/results.js';

/** A quick run's results with `over` replacing any field. */
export function fakeResults(over: Partial<BenchResults> = {}): BenchResults {
  return {
    version: 1,
    startedAt: 'a',
    finishedAt: 'b',
    quick: true,
    argv: [],
    machine: { cpuModel: 'cpu', cpuCount: 1, ramBytes: 1, os: 'os', node: 'v20', openssh: undefined, gitCommit: undefined },
    placements: PLACEMENTS.slice(0, 1),
    paths: [{ id: 'direct', title: 'direct TCP' }],
    scenarios: [],
    records: [],
    modules: {},
    ...over,
  };
}
