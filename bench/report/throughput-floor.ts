// The most one sealed connection can move against OpenSSH -L on this machine (issue 18 goal 1's
// ceiling). On loopback every core is busy, so one connection's rate is the cores over the CPU a
// GiB costs on the path and in iperf3's two ends. A floor for the tunnel's CPU per GiB, from the
// same run: the kernel time its three processes spent (socket copies, TCP, wake-ups: no user-space
// change removes it), the user time of a Node process that only relays the bytes, once per
// process (the hub's: it parses frame headers and nothing more), and one seal and one open per
// record in node:crypto (the record layer's micro-benchmark: the cipher, and the per-record cipher
// object and zero-filled output buffer that node:crypto's API makes every record pay). Against
// OpenSSH's whole path as measured, that floor bounds the ratio.
import { DEFAULT_RECORD_SUITES } from '../../src/crypto/constants.js';
import { findRecords, median, totalCpuPerGiB, totalKernelPerGiB, userCpuPerGiB, type BenchResults, type RunRecord } from '../results.js';
import type { CryptoBenchResult } from '../standalone/crypto-bench.js';

const GIB = 1024 ** 3;
/** Processes on the tunnel's path (service proxy, hub, device proxy). */
const TUNNEL_PROCESSES = 3;
/** The tunnel process that only relays bytes. */
const RELAY_ROLE = 'hub';

/** CPU seconds per GiB to seal and open 64 KiB records (one of each), from the micro-benchmark. */
export function sealOpenCpuPerGiB(r: BenchResults): number | undefined {
  const d = r.modules.crypto as CryptoBenchResult | undefined;
  // The suite the tunnel negotiates by default, as the micro-benchmark names it.
  const suite = DEFAULT_RECORD_SUITES[0];
  const us = (name: string): number | undefined => d?.micro?.find((m) => m.name === `${suite} ${name} 64 KiB`)?.usPerOp;
  const seal = us('seal');
  const open = us('open');
  if (seal === undefined || open === undefined) return undefined;
  return ((seal + open) / 1e6) * (GIB / (64 * 1024));
}

/** iperf3's two ends' CPU seconds per GiB in one record, if iperf3 reported them. */
function endsCpuPerGiB(rec: RunRecord): number | undefined {
  const s = rec.metrics.ends_cpu_s;
  return s === undefined || rec.usageBytes === undefined || rec.usageBytes === 0 ? undefined : s / (rec.usageBytes / GIB);
}

const medianOver = (r: BenchResults, path: string, f: (rec: RunRecord) => number | undefined): number | undefined =>
  median(findRecords(r, 'bulk-1', path, 'loopback').map((rec) => f(rec) ?? Number.NaN));

export interface ThroughputCeiling {
  /** The ratio to OpenSSH's rate one connection cannot pass here. */
  readonly ceiling: number;
  readonly text: string;
}

/** The ceiling of `path` against `reference` (loopback bulk-1, medians over rounds), or why not computable. */
export function throughputCeiling(r: BenchResults, path: string, reference: string): ThroughputCeiling | string {
  const kernel = medianOver(r, path, totalKernelPerGiB);
  const relayUser = medianOver(r, path, (rec) => userCpuPerGiB(rec, RELAY_ROLE));
  const ends = medianOver(r, path, endsCpuPerGiB);
  const refCpu = medianOver(r, reference, totalCpuPerGiB);
  const refEnds = medianOver(r, reference, endsCpuPerGiB);
  const crypto = sealOpenCpuPerGiB(r);
  if (kernel === undefined || relayUser === undefined || ends === undefined || refCpu === undefined || refEnds === undefined)
    return `needs bulk-1 on loopback for ${path} and ${reference} with kernel time and iperf3's CPU sampled`;
  if (crypto === undefined) return 'needs the crypto module (seal/open micro-benchmark)';
  const floor = kernel + TUNNEL_PROCESSES * relayUser + crypto;
  const ceiling = (refCpu + refEnds) / (floor + ends);
  const f2 = (x: number): string => x.toFixed(2);
  return {
    ceiling,
    text: `ceiling here about ${f2(ceiling)}x: the tunnel's processes spend ${f2(kernel)} s/GiB in the kernel, a Node process that only relays (the hub) ${f2(relayUser)} in user space (x${TUNNEL_PROCESSES}), and node:crypto's seal and open ${f2(crypto)}: a floor of ${f2(floor)} s/GiB against OpenSSH's whole path at ${f2(refCpu)}, iperf3's ends ${f2(ends)} and ${f2(refEnds)}, every core busy`,
  };
}
