/**
 * Soak: one device proxy and one service proxy through a hub child process, hundreds of TCP
 * channels with mixed traffic (bulk, interactive ping-pong, open-close churn; every channel
 * half-closes), WebSocket drops and a hub SIGKILL + restart at random moments. Every channel's
 * echo is checked by SHA-256; heap and RSS are sampled to show no growth after warm-up. Prints a
 * summary and exits non-zero on any loss, error or leak. Bounded: --duration seconds of traffic,
 * then at most DRAIN_TIMEOUT_MS to finish.
 *
 *   npm run soak -- --duration 120 [--concurrency 200]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AllowList, DeviceProxy, createServiceApp, parseForward, type ResumeEvent } from '../src/proxy/index.js';
import { expectKey, generateStaticKeyPair } from '../src/crypto/index.js';
import { freePort, waitForPort } from '../bench/procs.js';
import { ChaosProxy } from './chaos-proxy.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
/** After the traffic phase, how long channels in flight may take to finish. */
const DRAIN_TIMEOUT_MS = 60_000;
/** Heap growth after warm-up tolerated before calling it a leak, bytes. */
const LEAK_TOLERANCE_BYTES = 48 * 1024 * 1024;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number`);
  return v;
}

const durationS = arg('duration', 120);
const concurrency = Math.floor(arg('concurrency', 200));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const rand = (lo: number, hi: number): number => lo + Math.random() * (hi - lo);
const mib = (n: number): string => `${(n / 1048576).toFixed(1)} MiB`;

function cli(...args: string[]): string {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`devstreams ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.trim();
}

function startHub(port: number, dir: string): ChildProcess {
  const child = spawn(
    process.execPath,
    [MAIN, 'hub', '--listen', `127.0.0.1:${port}`, '--data', dir, '--log-level', 'warn', '--stream-rate', '1000'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  return child;
}

async function startEcho(): Promise<{ port: number; close(): void }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, close: () => (sockets.forEach((s) => s.destroy()), server.close()) };
}

interface Totals {
  channels: number;
  bytesSent: number;
  bytesEchoed: number;
  mismatches: number;
  errors: number;
  bytesLost: number;
  firstError?: string;
}
const totals: Totals = { channels: 0, bytesSent: 0, bytesEchoed: 0, mismatches: 0, errors: 0, bytesLost: 0 };

type Kind = 'bulk' | 'interactive' | 'churn';

/**
 * One channel: writes `pieces` (each after the previous echo when `pingPong`), half-closes, reads
 * the echo to its end, compares SHA-256 of both directions.
 */
function channel(port: number, kind: Kind): Promise<void> {
  const pieces: Buffer[] = [];
  if (kind === 'bulk') for (let i = 0, n = Math.floor(rand(16, 96)); i < n; i++) pieces.push(randomBytes(64 * 1024));
  else if (kind === 'interactive')
    for (let i = 0, n = Math.floor(rand(20, 60)); i < n; i++) pieces.push(randomBytes(Math.floor(rand(1, 200))));
  else pieces.push(randomBytes(Math.floor(rand(1, 4096))));
  const total = pieces.reduce((a, p) => a + p.length, 0);
  return new Promise((resolve) => {
    const sent = createHash('sha256');
    const got = createHash('sha256');
    let received = 0;
    let next = 0;
    let finished = false;
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const finish = (err?: Error): void => {
      if (finished) return;
      finished = true;
      totals.channels++;
      totals.bytesSent += total;
      totals.bytesEchoed += received;
      if (err) {
        totals.errors++;
        totals.bytesLost += total - received;
        totals.firstError ??= `${kind}: ${err.message}`;
      } else if (received !== total || got.digest('hex') !== sent.digest('hex')) {
        totals.mismatches++;
        totals.bytesLost += Math.abs(total - received) || total;
        totals.firstError ??= `${kind}: echo differs (${received} of ${total} bytes)`;
      }
      socket.destroy();
      resolve();
    };
    const writeNext = (): void => {
      if (next >= pieces.length) {
        socket.end();
        return;
      }
      const p = pieces[next++]!;
      sent.update(p);
      if (socket.write(p)) {
        if (kind !== 'interactive') setImmediate(writeNext);
      } else if (kind !== 'interactive') socket.once('drain', writeNext);
    };
    let echoedOfCurrent = 0;
    socket.on('data', (c: Buffer) => {
      got.update(c);
      received += c.length;
      if (kind === 'interactive') {
        echoedOfCurrent += c.length;
        if (echoedOfCurrent >= pieces[next - 1]!.length) {
          echoedOfCurrent = 0;
          writeNext();
        }
      }
    });
    socket.on('end', () => finish());
    socket.on('error', (e) => finish(e));
    socket.on('connect', writeNext);
  });
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'devstreams-soak-'));
  const hubPort = await freePort();
  let hub = startHub(hubPort, dir);
  await waitForPort(hubPort, 15_000);
  const deviceString = cli('registry', 'add', 'soak-device', '--data', dir);
  const serviceString = cli('registry', 'service-string', '--data', dir);
  const echo = await startEcho();
  const svcChaos = await ChaosProxy.start(hubPort);
  const devChaos = await ChaosProxy.start(hubPort);
  const deviceKeys = generateStaticKeyPair();
  const serviceKeys = generateStaticKeyPair();
  const device = new DeviceProxy({
    connectionString: `${deviceString};GatewayHostName=127.0.0.1:${devChaos.port}`,
    allow: new AllowList([`127.0.0.1:${echo.port}`]),
    staticKeys: deviceKeys,
    serviceKeys: [serviceKeys.publicKey],
    backoff: { initialMs: 100, maxMs: 1000 },
    resume: { giveUpMs: 60_000 },
  });
  await device.start();
  const events: ResumeEvent[] = [];
  const app = createServiceApp({
    connectionString: `${serviceString};GatewayHostName=127.0.0.1:${svcChaos.port}`,
    deviceId: 'soak-device',
    forwards: [parseForward(`0:127.0.0.1:${echo.port}`)],
    staticKeys: serviceKeys,
    verifyDevice: expectKey(deviceKeys.publicKey),
    resume: { giveUpMs: 60_000, reconnectInitialMs: 100, reconnectMaxMs: 1000 },
    onResume: (e) => {
      if (e.kind !== 'attemptFailed') events.push(e);
      if (e.kind === 'suspended' || e.kind === 'resumed' || e.kind === 'lost')
        console.log(`[soak] ${e.kind}${e.kind === 'resumed' ? ` (resent ${e.info.resent} messages after ${e.info.downtimeMs} ms)` : ''}`);
    },
  });
  const port = (await app.proxy.start())[0]!.port;

  const started = Date.now();
  const deadline = started + durationS * 1000;
  const samples: Array<{ t: number; heap: number; rss: number }> = [];
  const sample = (): void => {
    (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    samples.push({ t: Date.now() - started, heap: m.heapUsed, rss: m.rss });
  };
  sample();
  const sampler = setInterval(sample, 2000);

  // Chaos: stream drops every 4-12 s on one side or the other; one hub SIGKILL + restart mid-run.
  let drops = 0;
  let hubRestarts = 0;
  const restartAt = started + rand(0.3, 0.6) * durationS * 1000;
  const chaos = (async () => {
    let restarted = false;
    while (Date.now() < deadline - 3000) {
      await sleep(rand(4000, 12000));
      if (Date.now() >= deadline - 3000) break;
      if (!restarted && Date.now() >= restartAt) {
        restarted = true;
        console.log('[soak] hub SIGKILL');
        const gone = new Promise((r) => hub.once('exit', r));
        hub.kill('SIGKILL');
        await gone;
        await sleep(rand(300, 2000));
        hub = startHub(hubPort, dir);
        await waitForPort(hubPort, 15_000);
        hubRestarts++;
        console.log('[soak] hub restarted');
        continue;
      }
      const side = Math.random() < 0.5 ? svcChaos : devChaos;
      const n = side.dropAll();
      if (n > 0) drops++;
      console.log(`[soak] dropped ${n} connections on the ${side === svcChaos ? 'service' : 'device'} side`);
    }
  })();

  // Traffic: `concurrency` workers, each running channels back to back until the deadline.
  const kinds: Kind[] = ['bulk', 'interactive', 'interactive', 'churn', 'churn'];
  const workers = Array.from({ length: concurrency }, async (_, i) => {
    const kind = kinds[i % kinds.length]!;
    while (Date.now() < deadline) await channel(port, kind);
  });
  const progress = setInterval(
    () =>
      console.log(
        `[soak] ${Math.round((Date.now() - started) / 1000)} s: ${totals.channels} channels, ${mib(totals.bytesEchoed)} echoed, ${totals.errors + totals.mismatches} failures`,
      ),
    10_000,
  );
  const all = Promise.all(workers);
  await Promise.race([all, sleep(durationS * 1000 + DRAIN_TIMEOUT_MS)]);
  const drained = await Promise.race([all.then(() => true), sleep(0).then(() => false)]);
  await chaos;
  clearInterval(progress);
  clearInterval(sampler);
  sample();

  const resumes = events.filter((e) => e.kind === 'resumed').length;
  const lost = events.filter((e) => e.kind === 'lost').length;
  const warm = samples.filter((s) => s.t >= durationS * 1000 * 0.25);
  const base = warm.length > 0 ? Math.min(...warm.slice(0, 3).map((s) => s.heap)) : samples[0]!.heap;
  const endHeap = Math.min(...samples.slice(-3).map((s) => s.heap));
  const leak = endHeap - base > LEAK_TOLERANCE_BYTES;
  const rssStart = samples[0]!.rss;
  const rssWarm = warm[0]?.rss ?? rssStart;
  const rssEnd = samples[samples.length - 1]!.rss;

  const ok = drained && totals.errors === 0 && totals.mismatches === 0 && totals.bytesLost === 0 && lost === 0 && !leak;
  console.log('\n=== devstreams soak summary ===');
  console.log(`duration:              ${durationS} s of traffic, concurrency ${concurrency}`);
  console.log(`channels:              ${totals.channels} (all half-closed, SHA-256 checked)`);
  console.log(
    `bytes:                 ${totals.bytesSent} sent, ${totals.bytesEchoed} echoed (${mib(totals.bytesSent + totals.bytesEchoed)} through the tunnel)`,
  );
  console.log(
    `stream drops forced:   ${drops} drop events (${svcChaos.drops + devChaos.drops} TCP connections reset), hub SIGKILL+restart: ${hubRestarts}`,
  );
  console.log(`resumes:               ${resumes} service side, ${device.resumeCount} device side; sessions lost: ${lost}`);
  console.log(
    `bytes lost:            ${totals.bytesLost}; failed channels: ${totals.errors + totals.mismatches}${totals.firstError ? ` (first: ${totals.firstError})` : ''}`,
  );
  console.log(
    `heap after warm-up:    ${mib(base)} -> ${mib(endHeap)} at the end (tolerance ${mib(LEAK_TOLERANCE_BYTES)})${leak ? ' LEAK' : ''}`,
  );
  console.log(`RSS:                   ${mib(rssStart)} at start, ${mib(rssWarm)} after warm-up, ${mib(rssEnd)} at the end`);
  console.log(`drained in time:       ${drained}`);
  console.log(`result:                ${ok ? 'PASS' : 'FAIL'}`);

  await app.proxy.stop().catch(() => {});
  app.client.close();
  await device.stop().catch(() => {});
  await svcChaos.close();
  await devChaos.close();
  echo.close();
  hub.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
  process.exit(ok ? 0 : 1);
}

main().catch((err: unknown) => {
  console.error('[soak] failed:', err);
  process.exit(2);
});
