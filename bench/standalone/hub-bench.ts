/**
 * Hub benchmark: (1) stream setup rate on one hub, (2) relay throughput through the hub against
 * a bare `ws` relay in the same run (both driven by the SDKs' stream-socket client), (3) hub RSS
 * per idle device control socket. The hub (and the bare relay) run as child processes; clients
 * run here. Every phase is bounded in count and time.
 * Run standalone: `npm run build && node dist/bench/standalone/hub-bench.js`.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import WebSocket from 'ws';
import { DeviceRegistry } from '../../src/hub/registry.js';
import { formatConnectionString } from '../../src/auth/connection-string.js';
import { createDeviceToken } from '../../src/auth/sas.js';
import { DeviceClient, ServiceClient } from '../../src/sdk/index.js';
import { connectWebSocket, type Transport } from '../../src/transport/index.js';
import { spawnChild, waitForLine } from '../procs.js';
import { markdownTable } from '../markdown-table.js';
import { median } from '../results.js';
import { sampleProcess } from '../sampler.js';

export interface HubBenchOptions {
  /** Seconds for the setup-rate phase (measured, after the warm-up). */
  setupSeconds?: number;
  /**
   * Seconds of stream setups before the measurement starts, on the same hub under the same
   * load: a fresh hub spends its first second or so compiling its hot paths (and the rate
   * there is 20-30 % lower), which is not what a long-running hub does.
   */
  setupWarmupSeconds?: number;
  /** Setup-rate runs (fresh hub each); the median is kept. */
  setupRuns?: number;
  /** Concurrent stream setups in flight. */
  setupConcurrency?: number;
  /** Seconds per relay throughput run. */
  relaySeconds?: number;
  /** Alternating bare/hub relay runs; the median of each is kept. */
  relayRuns?: number;
  /** Idle devices for the memory phase. */
  idleDevices?: number;
}

export interface HubBenchResult {
  streamsPerSecond: number;
  /** Seconds of setups before each measured window. */
  setupWarmupSeconds: number;
  streamsCompleted: number;
  /** Hub process CPU per stream setup (ms): the machine-load-independent cost. */
  hubCpuMsPerStream: number;
  /** 1000 / hubCpuMsPerStream: streams/s one hub core could set up if clients ran elsewhere. */
  hubStreamsPerCoreSecond: number;
  hubRelayMBps: number;
  bareRelayMBps: number;
  relayRatio: number;
  idleDevices: number;
  rssPerDeviceKiB: number;
}

const here = dirname(fileURLToPath(import.meta.url));

export interface Child {
  proc: ChildProcess;
  port: number;
  rss(): Promise<number>;
  stop(): Promise<void>;
}

/** How long a bench child may take to answer a request (its start, an RSS reading). */
const CHILD_ANSWER_TIMEOUT_MS = 30_000;
/** How long a bench child may take to exit after its stdin ends, before it is killed. */
const CHILD_EXIT_TIMEOUT_MS = 5000;

/** Starts a `hub-bench-child.js` process (modes in that file); resolves once it listens. */
export async function startChild(args: string[]): Promise<Child> {
  const child = spawnChild(process.execPath, ['--expose-gc', join(here, 'hub-bench-child.js'), ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  // The child answers each request (and its start) with one JSON line on stdout.
  const next = (): Promise<Record<string, number>> =>
    waitForLine(
      child,
      'stdout',
      (_line, json) => json as Record<string, number> | undefined,
      CHILD_ANSWER_TIMEOUT_MS,
      'bench child answer',
    );
  const { port } = await next();
  const proc = child.proc;
  return {
    proc,
    port: port!,
    async rss() {
      const p = next();
      proc.stdin!.write('rss\n');
      return (await p).rss!;
    },
    async stop() {
      // Ending stdin asks the child to close its hub; it is killed if it does not exit in time.
      proc.stdin!.end();
      await new Promise<void>((r) => {
        if (proc.exitCode !== null) return r();
        proc.once('exit', () => r());
        setTimeout(() => void child.stop().then(r), CHILD_EXIT_TIMEOUT_MS).unref();
      });
    },
  };
}

function hubStrings(dir: string, port: number, deviceIds: string[]): { devices: string[]; service: string } {
  const reg = DeviceRegistry.open(dir);
  const ep = { hostName: `127.0.0.1:${port}`, transport: 'ws' as const };
  const recs = reg.addDevices(deviceIds);
  return {
    devices: recs.map((r) => formatConnectionString({ kind: 'device', deviceId: r.deviceId, sharedAccessKey: r.key, ...ep })),
    service: formatConnectionString({ kind: 'policy', policy: 'service', sharedAccessKey: reg.serviceKey, ...ep }),
  };
}

/** Pushes 64 KiB messages from `src` to `dst` for `seconds`, respecting backpressure; returns MB/s. */
async function pump(src: Transport, dst: Transport, seconds: number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  let received = 0;
  dst.attach({ onMessage: (m) => (received += m.length), onDrain() {}, onClose() {} });
  let resumeSend: (() => void) | undefined;
  src.attach({ onMessage() {}, onDrain: () => resumeSend?.(), onClose() {} });
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    if (!src.send([chunk])) {
      await new Promise<void>((r) => {
        resumeSend = r;
        setTimeout(r, 200);
      });
      resumeSend = undefined;
    }
    // let the receive side run on this shared event loop
    if (src.bufferedAmount > 0) await new Promise<void>((r) => setImmediate(r));
  }
  const elapsed = (performance.now() - start) / 1000;
  return received / elapsed / 1e6;
}

/** What a stream setup measurement runs against: devices (one string each), services, hub processes. */
export interface SetupTarget {
  /** Device connection strings; the device id is read from each. */
  devices: string[];
  /** Service connection strings; worker `w` uses `services[w % n]` (a load balancer's spread). */
  services: string[];
  /** PIDs of the hub processes whose CPU is charged to the setups. */
  hubPids: number[];
  /** Other processes whose CPU per setup is reported apart (a fleet's Redis). */
  otherPids?: number[];
}

export interface SetupMeasurement {
  rate: number;
  completed: number;
  failed: number;
  /** Hub CPU (all hub processes) per completed setup, ms. */
  hubCpuMs: number;
  /** CPU of `otherPids` per completed setup, ms. */
  otherCpuMs: number;
}

/**
 * Stream setup rate: `concurrency` workers each request a stream, send one byte, wait for its
 * echo and close, without pause for `warmupSeconds + seconds`; devices accept every stream and
 * echo. Only the last `seconds` count (setups, time and hub CPU from the moment the warm-up
 * ends). Shared by the hub and fleet benches.
 */
export async function measureStreamSetups(
  t: SetupTarget,
  seconds: number,
  concurrency: number,
  warmupSeconds = 0,
): Promise<SetupMeasurement> {
  const devices: DeviceClient[] = [];
  for (const cs of t.devices) {
    const d = DeviceClient.fromConnectionString(cs);
    d.on('streamRequest', (req) => {
      void req.accept().then(
        (tr) => tr.attach({ onMessage: (m) => tr.send([m]), onDrain() {}, onClose() {} }),
        () => {},
      );
    });
    await d.open();
    devices.push(d);
  }
  const ids = devices.map((d) => d.deviceId);
  const svcs = t.services.map((cs) => ServiceClient.fromConnectionString(cs));
  let completed = 0;
  let failed = 0;
  const cpuOf = (pids: readonly number[]): number => pids.reduce((sum, pid) => sum + sampleProcess({ pid, role: 'hub' }).cpuSeconds, 0);
  const cpuAll = (): number => cpuOf(t.hubPids);
  const otherCpu = (): number => cpuOf(t.otherPids ?? []);
  const reasons = new Map<string, number>();
  const ping = Buffer.from('x');
  let cpu0 = cpuAll();
  let other0 = otherCpu();
  let start = performance.now();
  const end = start + (warmupSeconds + seconds) * 1000;
  // The measurement window opens when the warm-up ends; the workers do not pause for it.
  const warmup = setTimeout(() => {
    completed = 0;
    failed = 0;
    reasons.clear();
    cpu0 = cpuAll();
    other0 = otherCpu();
    start = performance.now();
  }, warmupSeconds * 1000);
  const worker = async (w: number): Promise<void> => {
    let i = 0;
    const svc = svcs[w % svcs.length]!;
    while (performance.now() < end && failed < 100) {
      try {
        const st = await svc.createStream(ids[(w + i++) % ids.length]!, 'bench');
        await new Promise<void>((resolve, reject) => {
          let echoed = false;
          const timer = setTimeout(() => reject(new Error('no echo')), 10_000);
          const onMessage = (): void => {
            echoed = true;
            clearTimeout(timer);
            resolve();
          };
          // The close that follows every echo is not a failure (and costs no Error and stack trace).
          const onClose = (): void => {
            clearTimeout(timer);
            if (!echoed) reject(new Error('closed'));
          };
          st.transport.attach({ onMessage, onDrain() {}, onClose });
          st.transport.send([ping]);
        });
        st.transport.close();
        completed++;
      } catch (err) {
        failed++;
        reasons.set((err as Error).message, (reasons.get((err as Error).message) ?? 0) + 1);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  clearTimeout(warmup);
  const rate = completed / ((performance.now() - start) / 1000);
  const hubCpuMs = ((cpuAll() - cpu0) * 1000) / completed;
  const otherCpuMs = ((otherCpu() - other0) * 1000) / completed;
  for (const svc of svcs) svc.close();
  for (const d of devices) await d.close();
  if (failed > 0) process.stderr.write(`setup phase: ${failed} stream setups failed: ${JSON.stringify([...reasons])}\n`);
  return { rate, completed, failed, hubCpuMs, otherCpuMs };
}

async function setupRate(o: Required<HubBenchOptions>): Promise<{ rate: number; completed: number; hubCpuMs: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'devstreams-bench-'));
  const child = await startChild(['hub', dir]);
  const DEVICES = 8;
  const s = hubStrings(
    dir,
    child.port,
    Array.from({ length: DEVICES }, (_, i) => `bench-${i}`),
  );
  const m = await measureStreamSetups(
    { devices: s.devices, services: [s.service], hubPids: [child.proc.pid!] },
    o.setupSeconds,
    o.setupConcurrency,
    o.setupWarmupSeconds,
  );
  await child.stop();
  rmSync(dir, { recursive: true, force: true });
  return m;
}

async function bareRun(seconds: number): Promise<number> {
  const bare = await startChild(['bare']);
  // The same client code as the hub runs (the SDKs' stream sockets), so only the relay differs.
  const a = await connectWebSocket(`ws://127.0.0.1:${bare.port}/pair/1`);
  const b = await connectWebSocket(`ws://127.0.0.1:${bare.port}/pair/1`);
  const mbps = await pump(a, b, seconds);
  a.close();
  b.close();
  await bare.stop();
  return mbps;
}

async function hubRun(seconds: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'devstreams-bench-'));
  const child = await startChild(['hub', dir]);
  const s = hubStrings(dir, child.port, ['relay-dev']);
  const d = DeviceClient.fromConnectionString(s.devices[0]!);
  let deviceSide: Transport | undefined;
  const got = new Promise<void>((resolve) =>
    d.on(
      'streamRequest',
      (req) =>
        void req.accept().then((t) => {
          deviceSide = t;
          resolve();
        }),
    ),
  );
  await d.open();
  const svc = ServiceClient.fromConnectionString(s.service);
  const st = await svc.createStream('relay-dev', 'bulk');
  await got;
  const mbps = await pump(st.transport, deviceSide!, seconds);
  st.transport.close();
  svc.close();
  await d.close();
  await child.stop();
  rmSync(dir, { recursive: true, force: true });
  return mbps;
}

/** Alternates bare and hub runs (so both see the same machine load) and keeps the medians. */
async function relayThroughput(o: Required<HubBenchOptions>): Promise<{ hub: number; bare: number }> {
  const bare: number[] = [];
  const hub: number[] = [];
  for (let i = 0; i < o.relayRuns; i++) {
    bare.push(await bareRun(o.relaySeconds));
    hub.push(await hubRun(o.relaySeconds));
  }
  return { hub: median(hub) ?? NaN, bare: median(bare) ?? NaN };
}

async function idleMemory(o: Required<HubBenchOptions>): Promise<{ devices: number; perDeviceKiB: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'devstreams-bench-'));
  const child = await startChild(['hub', dir]);
  const ids = Array.from({ length: o.idleDevices }, (_, i) => `idle-${i}`);
  const reg = DeviceRegistry.open(dir);
  const recs = reg.addDevices(ids);
  const host = `127.0.0.1:${child.port}`;
  // warm up code paths with a few connections, then take the baseline
  const sockets: WebSocket[] = [];
  const connect = (deviceId: string, key: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://${host}/devices/${deviceId}/control`, {
        perMessageDeflate: false,
        headers: { authorization: createDeviceToken(host, deviceId, key) },
      });
      ws.once('open', () => {
        sockets.push(ws);
        resolve();
      });
      ws.once('error', reject);
    });
  for (const r of recs.slice(0, 50)) await connect(r.deviceId, r.key);
  const before = await child.rss();
  const deadline = Date.now() + 120_000;
  let next = 50;
  const CONCURRENCY = 100;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < recs.length && Date.now() < deadline) {
        const r = recs[next++]!;
        await connect(r.deviceId, r.key);
      }
    }),
  );
  const connected = sockets.length - 50;
  await new Promise((r) => setTimeout(r, 500));
  const after = await child.rss();
  for (const ws of sockets) ws.terminate();
  await child.stop();
  rmSync(dir, { recursive: true, force: true });
  return { devices: connected, perDeviceKiB: (after - before) / connected / 1024 };
}

/** Runs all three phases and returns the figures. */
export async function runHubBench(options: HubBenchOptions = {}): Promise<HubBenchResult> {
  const o: Required<HubBenchOptions> = {
    setupSeconds: 2,
    setupWarmupSeconds: 1,
    setupRuns: 3,
    setupConcurrency: 128,
    relaySeconds: 2,
    relayRuns: 3,
    idleDevices: 10_000,
    ...options,
  };
  const setups = [];
  for (let i = 0; i < o.setupRuns; i++) setups.push(await setupRate(o));
  setups.sort((a, b) => a.rate - b.rate);
  const setup = setups[Math.floor(setups.length / 2)]!;
  const relay = await relayThroughput(o);
  const mem = await idleMemory(o);
  return {
    streamsPerSecond: Math.round(setup.rate),
    setupWarmupSeconds: o.setupWarmupSeconds,
    streamsCompleted: setup.completed,
    hubCpuMsPerStream: Math.round(setup.hubCpuMs * 100) / 100,
    hubStreamsPerCoreSecond: Math.round(1000 / setup.hubCpuMs),
    hubRelayMBps: Math.round(relay.hub),
    bareRelayMBps: Math.round(relay.bare),
    relayRatio: Math.round((relay.hub / relay.bare) * 100) / 100,
    idleDevices: mem.devices,
    rssPerDeviceKiB: Math.round(mem.perDeviceKiB * 10) / 10,
  };
}

/** The figures as a Markdown table, for RESULTS.md. */
export function hubBenchMarkdown(r: HubBenchResult): string {
  const rows = [
    [
      `stream setup, end to end, after ${r.setupWarmupSeconds} s of warm-up setups (clients and hub on one machine)`,
      `${r.streamsPerSecond} streams/s`,
      '>= 500',
    ],
    ['hub CPU per stream setup', `${r.hubCpuMsPerStream} ms (${r.hubStreamsPerCoreSecond} streams/s per hub core)`, ''],
    ['relay throughput, hub vs bare ws relay', `${r.hubRelayMBps} vs ${r.bareRelayMBps} MB/s = ${r.relayRatio}x`, '>= 0.9x'],
    [`hub RSS per idle device control socket (${r.idleDevices} sockets)`, `${r.rssPerDeviceKiB} KiB`, '<= 16 KiB'],
  ];
  return `${markdownTable(['hub measure', 'result', 'goal'], rows)}\n`;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await runHubBench();
  process.stdout.write(`hub bench
  stream setup:     ${r.streamsPerSecond} streams/s end to end, clients and hub sharing this machine (${r.streamsCompleted} streams; goal >= 500)
                    hub CPU ${r.hubCpuMsPerStream} ms per stream = ${r.hubStreamsPerCoreSecond} streams/s per hub core
  relay throughput: hub ${r.hubRelayMBps} MB/s vs bare ws relay ${r.bareRelayMBps} MB/s = ${r.relayRatio}x (goal >= 0.9)
  idle devices:     ${r.idleDevices} control sockets (beyond a 50-socket warm-up), ${r.rssPerDeviceKiB} KiB hub RSS each (goal <= 16)
${JSON.stringify(r)}
`);
}
