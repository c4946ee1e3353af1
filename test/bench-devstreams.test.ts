// Runs `npm run bench -- --quick` (compiled) through the devstreams tunnel paths: the hub, the
// device proxy and the service proxy start as CLI child processes, on loopback and through the
// link emulator (GatewayHostName), and the plaintext variant runs only where its `only` allows.
// Checks structure and that every scenario ran, not the numbers.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, RUN_JS, ensureBuilt } from './helpers/build.js';

interface Record {
  scenario: string;
  path: string;
  placement: string;
  round: number;
  metrics: { [k: string]: number };
  usage?: { role: string }[];
  error?: string;
  note?: string;
}

describe('bench through the devstreams tunnel (--quick)', () => {
  let tmp: string;
  let code: number | null = null;
  let stderr = '';
  let records: Record[] = [];
  let report = '';

  beforeAll(async () => {
    ensureBuilt();
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-devstreams-test-'));
    const args = [
      '--quick',
      '--paths',
      'devstreams,devstreams-plain',
      '--placements',
      'loopback,same-region',
      '--scenarios',
      'bulk-1,ttfb,trace',
      '--no-charts',
      '--out',
      path.join(tmp, 'RESULTS.md'),
      '--json',
      path.join(tmp, 'json'),
    ];
    code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, [RUN_JS, ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`bench did not finish in time: ${stderr.slice(-2000)}`));
      }, 140_000);
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    records = (JSON.parse(fs.readFileSync(path.join(tmp, 'json', 'results-quick.json'), 'utf8')) as { records: Record[] }).records;
    report = fs.readFileSync(path.join(tmp, 'RESULTS.md'), 'utf8');
  }, 160_000);

  afterAll(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('runs every scenario through the tunnel on loopback and through the emulated legs', () => {
    expect(code, stderr).toBe(0);
    const tunnel = records.filter((r) => r.path === 'devstreams');
    expect([...new Set(tunnel.map((r) => `${r.placement}/${r.scenario}`))].sort()).toEqual([
      'loopback/bulk-1',
      'loopback/ttfb',
      'same-region/bulk-1',
      'same-region/ttfb',
    ]);
    for (const r of tunnel) expect(r.error, `${r.placement}/${r.scenario}`).toBeUndefined();
    for (const r of tunnel.filter((x) => x.scenario === 'bulk-1')) expect(r.metrics.MBps).toBeGreaterThan(0);
  });

  it('moves one untimed transfer through each path before its first loopback bulk-1 round, and reports its rate', () => {
    for (const pathId of ['devstreams', 'devstreams-plain']) {
      const bulk = records.filter((r) => r.path === pathId && r.scenario === 'bulk-1' && r.placement === 'loopback');
      expect(bulk.map((r) => r.round)).toEqual([1, 2]);
      expect(bulk[0]?.metrics.first_MBps, pathId).toBeGreaterThan(0);
      expect(bulk[1]?.metrics.first_MBps, pathId).toBeUndefined();
    }
    // Emulated placements are not warmed up (as their round trips are not): no first-transfer figure.
    for (const r of records.filter((x) => x.scenario === 'bulk-1' && x.placement !== 'loopback'))
      expect(r.metrics.first_MBps).toBeUndefined();
    expect(report).toContain('first transfer MB/s');
  });

  it('samples the hub, both proxies and, on an emulated placement, the link emulator', () => {
    const roles = (placement: string): string[] =>
      (records.find((r) => r.path === 'devstreams' && r.placement === placement && r.scenario === 'bulk-1')?.usage ?? []).map(
        (u) => u.role,
      );
    expect(roles('loopback')).toEqual(['hub', 'device proxy', 'service proxy']);
    expect(roles('same-region')).toEqual(['hub', 'device proxy', 'service proxy', 'link emulator']);
  });

  it('makes the stream cold between TTFB samples (SIGUSR2 to the service proxy)', () => {
    for (const r of records.filter((x) => x.path === 'devstreams' && x.scenario === 'ttfb')) {
      expect(r.metrics.p50_ms).toBeGreaterThan(0);
      expect(typeof r.metrics.cold_failures).toBe('number');
    }
  });

  it('runs the plaintext variant only on loopback bulk-1, and reports encryption on against off', () => {
    const plain = records.filter((r) => r.path === 'devstreams-plain');
    expect([...new Set(plain.map((r) => `${r.placement}/${r.scenario}`))]).toEqual(['loopback/bulk-1']);
    expect(plain[0]?.error).toBeUndefined();
    expect(report).toMatch(
      /^\| Crypto: tunnel throughput encrypted >= 0\.85x unencrypted .*\| (met|\*\*not met\*\*)(, \d+ of \d+ rounds)? \|/m,
    );
    expect(report).toMatch(/^\| loopback \| devstreams-plain \| \d+ \| [\d,.]+ \|/m);
  });

  it("breaks one round trip into hops per process and layer from the processes' trace points", () => {
    const section = report.slice(report.indexOf('## Where the round trip goes'));
    expect(section.length).toBeGreaterThan(0);
    expect(section).toMatch(/(\d+) of \1 traced round trips had every point|[1-9]\d* of \d+ traced round trips had every point/);
    for (const row of [
      '| 2 | service proxy | socket read -> mux',
      '| 3 | service proxy | seal',
      '| 6 | hub | read -> write',
      '| 9 | device proxy | open',
      '| 10 | device proxy | resumable layer, mux',
    ]) {
      expect(section).toContain(row);
    }
    expect(section).toMatch(/^\| {2}\| \*\*sum\*\* \| {2}\| \*\*[\d.]+\*\* \| {2}\|$/m);
    expect(section).toMatch(/without tracing: mean [\d.]+ us/);
    // Under iperf3 bulk: the interactive message followed through every queue, both ways.
    const loaded = section.slice(section.indexOf('### Under bulk: where the interactive round trip waits'));
    expect(loaded).toMatch(/[1-9]\d* of \d+ round trips had every point/);
    const rows = [...loaded.matchAll(/^\| (\d+) \| ([^|]+) \| ([^|]+) \| (-?\d+) \| (-?\d+) \|$/gm)];
    expect(rows.map((r) => Number(r[1]))).toEqual(Array.from({ length: 27 }, (_, i) => i + 1));
    for (const [n, where, what] of [
      [1, 'kernel', 'bench client write -> service proxy socket read'],
      [2, 'service proxy', 'mux queue, held by the resumable layer: in-flight bound reached'],
      [3, 'service proxy', 'mux queue, held by the connection below'],
      [4, 'service proxy', 'mux queue, the rest'],
      [5, 'service proxy', 'record layer: batch -> sealed'],
      [6, 'service proxy', 'websocket socket buffer in user space'],
      [7, 'kernel', 'service proxy socket -> hub read'],
      [8, 'hub', 'splice'],
      [9, 'hub', 'socket buffer in user space'],
      [10, 'kernel', 'hub socket -> device proxy read'],
      [11, 'device proxy', 'the same read: records ahead of it'],
      [12, 'device proxy', 'record layer: open'],
      [14, 'kernel + echo', 'device proxy target write -> echo server'],
      [15, 'device proxy', 'mux queue, held by the resumable layer'],
      [20, 'kernel', 'device proxy socket -> hub read'],
      [23, 'kernel', 'hub socket -> service proxy read'],
      [27, 'kernel', 'service proxy socket write -> bench client read'],
    ] as const) {
      const row = rows[n - 1];
      expect(row?.[2]).toBe(where);
      expect(row?.[3]).toContain(what);
    }
    // The rows add up to the bold sum (each is rounded to 1 us), and the text says how close that is to the measured round trips.
    const sum = Number(/^\| {2}\| \*\*sum\*\* \| {2}\| \*\*(\d+)\*\* \| {2}\|$/m.exec(loaded)?.[1]);
    const added = rows.reduce((s, r) => s + Number(r[4]), 0);
    expect(Math.abs(added - sum)).toBeLessThanOrEqual(rows.length);
    expect(loaded).toMatch(new RegExp(`Sum of the rows ${sum} us = the matched round trips' mean`));
    expect(loaded).toMatch(
      /Against every traced loaded round trip, matched or not \(mean \d+ us\): (within|\*\*not within\*\*) 10 %, [\d.]+ % apart/,
    );
    expect(loaded).toMatch(
      /without tracing \(mean \d+ us, p50 \d+ us, .*\): [\d.]+ % apart pooled; traced against untraced over \d+ paired rounds? .*: (within|\*\*not within\*\*) 10 %/,
    );
    expect(section).toMatch(/% apart pooled; traced against untraced over \d+ paired rounds? .*median [+-][\d.]+ %/);
    expect(loaded).toMatch(/kernel's queues ahead of it .*row 7 \d+ kB, row 10 \d+ kB, row 20 \d+ kB, row 23 \d+ kB/);
  });
});
