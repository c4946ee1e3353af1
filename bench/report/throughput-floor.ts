// The most one sealed connection can move against OpenSSH -L on this machine (issue 18 goal 1's
// ceiling). On loopback every core is busy, so one connection's rate is the cores over the CPU a
// GiB costs on the path and in iperf3's two ends. A floor for the sealed tunnel's CPU per GiB, all
// from the same run's tunnels: the kernel time its three processes spent (socket copies, TCP,
// wake-ups: no user-space change removes it), plus what sealing and opening add in user space
// (the sealed tunnel's user time less the plaintext tunnel's: node:crypto's cipher, its cipher
// object and zero-filled output per record), and nothing else: as if every other line of
// JavaScript cost nothing. Against OpenSSH's whole path as measured, that floor bounds the ratio.
import { DEFAULT_RECORD_SUITES } from '../../src/crypto/constants.js';
import { findRecords, median, totalCpuPerGiB, totalKernelPerGiB, type BenchResults, type RunRecord } from '../results.js';
import type { CryptoBenchResult } from '../standalone/crypto-bench.js';

const GIB = 1024 ** 3;
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

/** All of a record's processes' user-space CPU seconds per GiB, if kernel time was sampled. */
function totalUserPerGiB(rec: RunRecord): number | undefined {
  const all = totalCpuPerGiB(rec);
  const kernel = totalKernelPerGiB(rec);
  return all === undefined || kernel === undefined ? undefined : all - kernel;
}

/**
 * The ceiling of `path` against `reference` (loopback bulk-1, medians over rounds), with `plain`
 * the same tunnel without the record layer, or why it cannot be computed.
 */
export function throughputCeiling(r: BenchResults, path: string, plain: string, reference: string): ThroughputCeiling | string {
  const kernel = medianOver(r, path, totalKernelPerGiB);
  const sealedUser = medianOver(r, path, totalUserPerGiB);
  const plainUser = medianOver(r, plain, totalUserPerGiB);
  const ends = medianOver(r, path, endsCpuPerGiB);
  const refCpu = medianOver(r, reference, totalCpuPerGiB);
  const refUser = medianOver(r, reference, totalUserPerGiB);
  const refEnds = medianOver(r, reference, endsCpuPerGiB);
  if (
    kernel === undefined ||
    sealedUser === undefined ||
    plainUser === undefined ||
    ends === undefined ||
    refCpu === undefined ||
    refUser === undefined ||
    refEnds === undefined
  )
    return `needs bulk-1 on loopback for ${path}, ${plain} and ${reference} with kernel time and iperf3's CPU sampled`;
  const records = Math.max(0, sealedUser - plainUser);
  const floor = kernel + records;
  const ceiling = (refCpu + refEnds) / (floor + ends);
  const f2 = (x: number): string => x.toFixed(2);
  const micro = sealOpenCpuPerGiB(r);
  return {
    ceiling,
    text: `ceiling here about ${f2(ceiling)}x: with no JavaScript but the record layer's, the tunnel would still spend ${f2(kernel)} s/GiB in the kernel and ${f2(records)} sealing and opening (its user time sealed less plaintext${micro === undefined ? '' : `; node:crypto's micro-benchmark ${f2(micro)}`}): a floor of ${f2(floor)} s/GiB against OpenSSH's whole path at ${f2(refCpu)} (of it ${f2(refUser)} in user space, its AES-GCM included), iperf3's ends ${f2(ends)} and ${f2(refEnds)}, every core busy`,
  };
}
