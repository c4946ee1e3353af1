// CPU time and peak RSS of path processes, read from /proc (Linux). CPU is utime + stime, with
// stime (time in the kernel: socket copies, TCP, wake-ups) kept apart as well, because that share
// is what no user-space change removes; peak RSS is VmHWM (the kernel's high-water mark), summed
// over a process and, if asked, its descendants.
import fs from 'node:fs';
import type { ProcessRef } from './procs.js';

const CLOCK_TICKS = 100; // USER_HZ on Linux

export interface ProcStat {
  readonly cpuSeconds: number;
  /** The part of cpuSeconds spent in the kernel (stime). */
  readonly kernelSeconds: number;
  readonly peakRssBytes: number;
}

function readStat(pid: number): { ppid: number; cpuSeconds: number; kernelSeconds: number } | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // after "pid (comm) ": state ppid ... utime is field 14 overall -> index 11 here, stime 12
    const kernelSeconds = Number(fields[12]) / CLOCK_TICKS;
    return { ppid: Number(fields[1]), cpuSeconds: Number(fields[11]) / CLOCK_TICKS + kernelSeconds, kernelSeconds };
  } catch {
    return undefined;
  }
}

function readHwm(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] === undefined ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}

/** All live descendants of pid (one scan of /proc). */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (st === undefined) continue;
    const list = children.get(st.ppid) ?? [];
    list.push(Number(name));
    children.set(st.ppid, list);
  }
  const out: number[] = [];
  const stack = [pid];
  for (let guard = 0; stack.length > 0 && guard < 10_000; guard++) {
    const p = stack.pop() as number;
    for (const c of children.get(p) ?? []) {
      out.push(c);
      stack.push(c);
    }
  }
  return out;
}

/** CPU seconds and peak RSS of one process ref (with its descendants if the ref says so). */
export function sampleProcess(ref: ProcessRef): ProcStat {
  const pids = [ref.pid, ...(ref.withChildren === true ? descendants(ref.pid) : [])];
  let cpu = 0;
  let kernel = 0;
  let rss = 0;
  for (const p of pids) {
    const st = readStat(p);
    cpu += st?.cpuSeconds ?? 0;
    kernel += st?.kernelSeconds ?? 0;
    rss += readHwm(p);
  }
  return { cpuSeconds: cpu, kernelSeconds: kernel, peakRssBytes: rss };
}

export interface ProcUsage {
  readonly role: string;
  readonly cpuSeconds: number;
  /** The part of cpuSeconds spent in the kernel; absent in results written before it was sampled. */
  readonly kernelSeconds?: number;
  readonly peakRssBytes: number;
}

/** Runs fn and returns the CPU each process spent during it and its peak RSS after it. */
export async function measureProcesses<T>(refs: readonly ProcessRef[], fn: () => Promise<T>): Promise<{ result: T; usage: ProcUsage[] }> {
  const before = refs.map((r) => sampleProcess(r));
  const result = await fn();
  const usage = refs.map((r, i) => {
    const after = sampleProcess(r);
    return {
      role: r.role,
      cpuSeconds: Math.max(0, after.cpuSeconds - (before[i]?.cpuSeconds ?? 0)),
      kernelSeconds: Math.max(0, after.kernelSeconds - (before[i]?.kernelSeconds ?? 0)),
      peakRssBytes: after.peakRssBytes,
    };
  });
  return { result, usage };
}

/** CPU seconds of this (the driver) process so far. */
export function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}
