// Report module of the record layer (issue 5): plaintext against sealed inline and on workers
// over a TCP pair, seal/open micro-benchmarks (crypto-bench.ts); and the goal rows measured
// through the whole tunnel: the devstreams path (encrypted) against devstreams-plain, and the
// inline path against devstreams-workers, on loopback bulk-1, with CPU seconds per GiB.
import { PAIR_WINDOW_BYTES, formatCryptoBench, runCryptoBench, type CryptoBenchResult } from './standalone/crypto-bench.js';
import { DEVSTREAMS_PATH_ID, DEVSTREAMS_PLAIN_PATH_ID, DEVSTREAMS_WORKERS_PATH_ID } from './paths/devstreams.js';
import { registerGoal, registerModule, type GoalVerdict } from './report/registry.js';
import { sealOpenCpuPerGiB } from './report/throughput-floor.js';
import { findRecords, median, metric, roundRatios, totalCpuPerGiB, type BenchResults } from './results.js';

/** Bounds of the crypto module: seconds per throughput case, tinybench ms per micro task. */
export const CRYPTO_MODULE_BUDGET = {
  quick: { secondsPerCase: 0.5, microTimeMs: 50 },
  full: { secondsPerCase: 3, microTimeMs: 300 },
} as const;
/** Issue 5: encrypted tunnel throughput >= this fraction of the plaintext tunnel's. */
export const CRYPTO_ON_OFF_GOAL = 0.85;

/** All of the path's processes' CPU seconds per GiB during loopback bulk-1: the median over rounds. */
export function tunnelCpuPerGiB(r: BenchResults, path: string): number | undefined {
  return median(findRecords(r, 'bulk-1', path, 'loopback').map((rec) => totalCpuPerGiB(rec) ?? NaN));
}

/**
 * The best on/off ratio this machine allows when the tunnel is CPU-bound (every core busy, as
 * on loopback here): the sealed tunnel does the plaintext tunnel's work plus one seal and one
 * open per record, so its throughput is at most plain x cOff / (cOff + sealOpen).
 */
function ceilingText(r: BenchResults, cOff: number | undefined): string {
  const crypto = sealOpenCpuPerGiB(r);
  if (cOff === undefined || crypto === undefined) return '';
  return `; ceiling here about ${(cOff / (cOff + crypto)).toFixed(2)}x: sealing and opening alone cost ${crypto.toFixed(2)} s/GiB in node:crypto (micro-benchmark) on top of the plaintext tunnel's ${cOff.toFixed(1)}, with every core busy`;
}

function onVsOff(r: BenchResults): GoalVerdict {
  const on = metric(r, 'bulk-1', DEVSTREAMS_PATH_ID, 'loopback', 'MBps');
  const off = metric(r, 'bulk-1', DEVSTREAMS_PLAIN_PATH_ID, 'loopback', 'MBps');
  if (on === undefined || off === undefined)
    return { status: 'not measured', detail: `needs bulk-1 on loopback for ${DEVSTREAMS_PATH_ID} and ${DEVSTREAMS_PLAIN_PATH_ID}` };
  const cOn = tunnelCpuPerGiB(r, DEVSTREAMS_PATH_ID);
  const cOff = tunnelCpuPerGiB(r, DEVSTREAMS_PLAIN_PATH_ID);
  const cpu =
    cOn !== undefined && cOff !== undefined
      ? `; CPU ${cOn.toFixed(1)} vs ${cOff.toFixed(1)} s/GiB (all tunnel processes, median over rounds)`
      : '';
  // Judged on the median of the per-round ratios: the two paths of one round ran side by side.
  const ratios = roundRatios(r, 'bulk-1', 'loopback', 'MBps', DEVSTREAMS_PATH_ID, DEVSTREAMS_PLAIN_PATH_ID);
  const m = median(ratios) ?? on / off;
  const held = ratios.filter((x) => x >= CRYPTO_ON_OFF_GOAL).length;
  const range = ratios.length > 1 ? ` (rounds ${Math.min(...ratios).toFixed(2)}x to ${Math.max(...ratios).toFixed(2)}x)` : '';
  return {
    status: m >= CRYPTO_ON_OFF_GOAL ? 'met' : 'not met',
    rounds: `${held} of ${ratios.length}`,
    detail: `median ${m.toFixed(2)}x${range}; medians ${on.toFixed(1)} vs ${off.toFixed(1)} MB/s${cpu}${ceilingText(r, cOff)}`,
  };
}

function inlineVsWorkers(r: BenchResults): GoalVerdict {
  const inline = metric(r, 'bulk-1', DEVSTREAMS_PATH_ID, 'loopback', 'MBps');
  const workers = metric(r, 'bulk-1', DEVSTREAMS_WORKERS_PATH_ID, 'loopback', 'MBps');
  if (inline === undefined || workers === undefined)
    return { status: 'not measured', detail: `needs bulk-1 on loopback for ${DEVSTREAMS_PATH_ID} and ${DEVSTREAMS_WORKERS_PATH_ID}` };
  const cIn = tunnelCpuPerGiB(r, DEVSTREAMS_PATH_ID);
  const cW = tunnelCpuPerGiB(r, DEVSTREAMS_WORKERS_PATH_ID);
  const cpu = cIn !== undefined && cW !== undefined ? `; CPU ${cIn.toFixed(1)} vs ${cW.toFixed(1)} s/GiB` : '';
  const pair = r.modules.crypto as CryptoBenchResult | undefined;
  const pairText =
    pair?.throughput !== undefined
      ? `; TCP pair: ${pair.throughput
          .filter((t) => t.name.startsWith('sealed'))
          .map((t) => `${t.name.replace(/^sealed \S+ /, '')} ${t.mbPerSec.toFixed(0)} MB/s ${t.cpuSecPerGiB.toFixed(1)} s/GiB`)
          .join(', ')}`
      : '';
  return {
    status: 'met',
    detail: `tunnel inline ${inline.toFixed(1)} vs workers ${workers.toFixed(1)} MB/s (${workers >= inline ? 'workers faster' : 'inline faster'})${cpu}${pairText}`,
  };
}

registerGoal({
  order: 40,
  id: 'crypto-on-vs-off',
  text: `Crypto: tunnel throughput encrypted >= ${CRYPTO_ON_OFF_GOAL}x unencrypted (loopback bulk-1, devstreams vs devstreams-plain)`,
  evaluate: onVsOff,
});
registerGoal({
  order: 40,
  id: 'crypto-inline-vs-workers',
  text: 'Crypto: inline vs workers throughput and CPU s/GiB measured in the same run (the faster is the right default)',
  evaluate: inlineVsWorkers,
});

registerModule({
  id: 'crypto',
  title: 'Record layer: plaintext, sealed inline and on workers; seal/open micro-benchmarks (`crypto`)',
  order: 70,
  collect: (ctx) =>
    runCryptoBench({
      ...(ctx.quick ? CRYPTO_MODULE_BUDGET.quick : CRYPTO_MODULE_BUDGET.full),
      ...(ctx.signal ? { signal: ctx.signal } : {}),
    }),
  render: (data) => {
    const d = data as CryptoBenchResult & { error?: string };
    if (d.error !== undefined) return `not measured: ${d.error}`;
    return `Sender in the bench process, receiver in a child process, over one TCP connection (\`node dist/bench/crypto-bench.js\`), the sender at most ${PAIR_WINDOW_BYTES / 1024 / 1024} MiB ahead of the receiver's acknowledgements (the mux's largest window); the tunnel-level comparison is in the bulk tables (paths ${DEVSTREAMS_PATH_ID}, ${DEVSTREAMS_PLAIN_PATH_ID}, ${DEVSTREAMS_WORKERS_PATH_ID}) and the Goals.\n\n${formatCryptoBench(d)}`;
  },
});
