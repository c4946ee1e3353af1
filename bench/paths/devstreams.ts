// The devstreams tunnel path: service proxy -> hub -> device proxy -> target, every piece a child
// process of the compiled CLI (`node dist/src/cli/main.js ...`), as an operator would run them:
//   1. `devstreams hub --listen 127.0.0.1:0 --data DIR` (its "hub listening" log line on stderr
//      carries the bound port), then `registry add bench-device` and `registry service-string` on
//      the same data directory (the registry is read live by the running hub);
//   2. unless the placement is loopback, one link-emulator process with two relays to the hub:
//      the hub-service leg (service proxy -> hub) and the device-hub leg (device proxy -> hub).
//      The proxies reach the hub through them via `GatewayHostName=127.0.0.1:<relay port>` in
//      their connection strings; tokens stay scoped to HostName, the hub's own address;
//   3. `devstreams device-proxy --allow 127.0.0.1:<target port>` per target, waited for until
//      its control socket is connected;
//   4. `devstreams service-proxy --device-id ... --forward 0:127.0.0.1:<port>` per target in
//      TARGET_NAMES order, `--eager`; it prints one "forward 127.0.0.1:PORT -> ..." line each.
// Each proxy gets its own DEVSTREAMS_HOME under the path's temp dir (keys, known_devices), so
// nothing lands in ~. `makeCold` sends SIGUSR2 to the service proxy, which drops its device
// stream gracefully and logs "device stream dropped"; the next connection opens a new stream
// (hub rendezvous and Noise handshake included).
//
// Variants, so one run compares them side by side: `devstreams` (end-to-end encrypted, records
// sealed inline), `devstreams-plain` (`--plaintext` / `--allow-plaintext`: no record layer, the
// cost of encryption by difference) and `devstreams-workers` (`--crypto workers`: sealing on
// worker threads). The variants run only loopback bulk-1 (`only`), which is
// where the difference shows and keeps the full bench within its time budget.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { relayedCapacityMBps, relayedRttMs } from '../placements.js';
import { spawnChild, spawnNode, stderrOf, waitForLine, type Child } from '../procs.js';
import { TARGET_NAMES, type TargetName } from '../targets.js';
import { startLinks } from './links.js';
import { encodePublicKey } from '../../src/crypto/index.js';
import { loadOrCreateKeyPair } from '../../src/proxy/index.js';
import { RECOMMENDED_NODE_FLAGS } from '../../src/cli/node-flags.js';
import type { BenchPath, PathStartContext, RunningPath } from './types.js';

export const DEVSTREAMS_PATH_ID = 'devstreams';
export const DEVSTREAMS_PLAIN_PATH_ID = 'devstreams-plain';
export const DEVSTREAMS_WORKERS_PATH_ID = 'devstreams-workers';
export const DEVSTREAMS_QUEUE_TARGET_PATH_ID = 'devstreams-queue-1ms';

/** The compiled CLI entry (dist/src/cli/main.js), next to the compiled bench. */
export const CLI_MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'cli', 'main.js');
/** Id the bench registers its one device under. */
export const BENCH_DEVICE_ID = 'bench-device';
/** How long makeCold waits for the service proxy to report its stream dropped. */
export const MAKE_COLD_TIMEOUT_MS = 15_000;
/**
 * Log level of the tunnel's processes: per-connection lines are debug, so info costs nothing per
 * connection. DEVSTREAMS_BENCH_LOG_LEVEL=debug to diagnose (with DEVSTREAMS_BENCH_LOG_DIR=DIR,
 * each process's stderr is also written to DIR/<role>-<pid>.log).
 */
const CHILD_LOG_LEVEL = process.env.DEVSTREAMS_BENCH_LOG_LEVEL ?? 'info';
const CHILD_LOG_DIR = process.env.DEVSTREAMS_BENCH_LOG_DIR;

/** Copies a child's stderr to a log file when DEVSTREAMS_BENCH_LOG_DIR is set. */
function keepLog(c: Child, role: string): void {
  if (CHILD_LOG_DIR === undefined || CHILD_LOG_DIR === '') return;
  fs.mkdirSync(CHILD_LOG_DIR, { recursive: true });
  const out = fs.createWriteStream(path.join(CHILD_LOG_DIR, `${role}-${c.pid}.log`));
  c.proc.stderr?.on('data', (d: Buffer) => out.write(d));
  c.proc.once('exit', () => out.end());
}

interface Variant {
  readonly id: string;
  readonly title: string;
  /** Extra flags of the service proxy and the device proxy. */
  readonly serviceArgs: readonly string[];
  readonly deviceArgs: readonly string[];
  readonly only?: BenchPath['only'];
}

/** `registry ...` on the hub's data directory; resolves with its stdout (one line). */
async function registry(args: readonly string[]): Promise<string> {
  const c = spawnChild(process.execPath, [CLI_MAIN, 'registry', ...args]);
  let out = '';
  c.proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const code = await new Promise<number | null>((resolve) => c.proc.once('exit', (n) => resolve(n)));
  if (code !== 0) throw new Error(`devstreams registry ${args[0]} failed (${code}): ${stderrOf(c)}`);
  return out.trim();
}

function withGateway(cs: string, port: number | undefined): string {
  return port === undefined ? cs : `${cs};GatewayHostName=127.0.0.1:${port}`;
}

async function startTunnel(v: Variant, ctx: PathStartContext): Promise<RunningPath> {
  const dir = fs.mkdtempSync(path.join(ctx.tmpDir, `${v.id}-`));
  const stopAll: Array<() => Promise<void>> = [];
  const stop = async (): Promise<void> => {
    for (const s of stopAll.splice(0).reverse()) await s().catch(() => undefined);
  };
  try {
    const hubData = path.join(dir, 'hub');
    const hub = spawnNode(
      CLI_MAIN,
      ['hub', '--listen', '127.0.0.1:0', '--data', hubData, '--log-level', CHILD_LOG_LEVEL],
      'hub',
      { ...ctx.env },
      RECOMMENDED_NODE_FLAGS,
    );
    stopAll.push(() => hub.stop());
    keepLog(hub, 'hub');
    const hubPort = await waitForLine(
      hub,
      'stderr',
      (_l, j) => (j?.msg === 'hub listening' && typeof j.port === 'number' ? j.port : undefined),
      undefined,
      'hub listening line',
    );
    const deviceCs = await registry(['add', BENCH_DEVICE_ID, '--data', hubData]);
    const serviceCs = await registry(['service-string', '--data', hubData]); // after: both rewrite registry.json

    let servicePort: number | undefined;
    let devicePort: number | undefined;
    const processes: Array<{ pid: number; role: string }> = [{ pid: hub.pid, role: 'hub' }];
    if (!ctx.placement.loopback) {
      const links = await startLinks([
        { targetHost: '127.0.0.1', targetPort: hubPort, leg: ctx.placement.hubService },
        { targetHost: '127.0.0.1', targetPort: hubPort, leg: ctx.placement.deviceHub },
      ]);
      stopAll.push(() => links.child.stop());
      [servicePort, devicePort] = links.ports;
      processes.push({ pid: links.child.pid, role: 'link emulator' });
    }

    const deviceHome = path.join(dir, 'device-home');
    const serviceHome = path.join(dir, 'service-home');
    fs.mkdirSync(deviceHome);
    fs.mkdirSync(serviceHome);
    // The device lets in only the service's key (made now in the service's home, as 'key show' does).
    const serviceKey = encodePublicKey((await loadOrCreateKeyPair(path.join(serviceHome, 'service.key'))).keys.publicKey);
    const device = spawnNode(
      CLI_MAIN,
      [
        'device-proxy',
        ...TARGET_NAMES.flatMap((t) => ['--allow', `127.0.0.1:${ctx.targets[t]}`]),
        '--service-key',
        serviceKey,
        ...v.deviceArgs,
        '--log-level',
        CHILD_LOG_LEVEL,
      ],
      'device-proxy',
      { ...ctx.env, DEVSTREAMS_HOME: deviceHome, DEVSTREAMS_CONNECTION_STRING: withGateway(deviceCs, devicePort) },
      RECOMMENDED_NODE_FLAGS,
    );
    stopAll.push(() => device.stop());
    keepLog(device, 'device-proxy');
    await waitForLine(
      device,
      'stderr',
      (_l, j) => (j?.msg === 'control socket connected' ? true : undefined),
      undefined,
      'device proxy connected',
    );
    processes.push({ pid: device.pid, role: 'device proxy' });
    // The device proxy serves channels only once it has logged the stream open: an OPEN that
    // arrives right behind the handshake, before that, is refused ("this side accepts no
    // channels"; see the report). Warm measurements start after both ends are ready.
    const deviceOpen = waitForLine(
      device,
      'stderr',
      (_l, j) => (j?.msg === 'device stream open' ? true : undefined),
      undefined,
      'device stream open (device side)',
    );
    deviceOpen.catch(() => undefined); // awaited below; this only keeps an early failure from going unhandled

    const service = spawnNode(
      CLI_MAIN,
      [
        'service-proxy',
        '--device-id',
        BENCH_DEVICE_ID,
        ...TARGET_NAMES.flatMap((t) => ['--forward', `0:127.0.0.1:${ctx.targets[t]}`]),
        '--eager',
        ...v.serviceArgs,
        '--log-level',
        CHILD_LOG_LEVEL,
      ],
      'service-proxy',
      { ...ctx.env, DEVSTREAMS_HOME: serviceHome, DEVSTREAMS_CONNECTION_STRING: withGateway(serviceCs, servicePort) },
      RECOMMENDED_NODE_FLAGS,
    );
    stopAll.push(() => service.stop());
    keepLog(service, 'service-proxy');
    // Watch the stream state from the start: `--eager` opens it right after the listeners print.
    const firstOpen = waitForLine(
      service,
      'stderr',
      (_l, j) => (j?.msg === 'device stream' && j.state === 'open' ? true : undefined),
      undefined,
      'device stream open',
    );
    firstOpen.catch(() => undefined); // awaited below
    const localPorts = new Map<number, number>();
    await waitForLine(
      service,
      'stdout',
      (line) => {
        const m = /^forward 127\.0\.0\.1:(\d+) -> 127\.0\.0\.1:(\d+)$/.exec(line);
        if (m !== null) localPorts.set(Number(m[2]), Number(m[1]));
        return localPorts.size === TARGET_NAMES.length ? true : undefined;
      },
      undefined,
      'service proxy forward lines',
    );
    await firstOpen;
    await deviceOpen;
    processes.push({ pid: service.pid, role: 'service proxy' });
    const ports = Object.fromEntries(TARGET_NAMES.map((t) => [t, localPorts.get(ctx.targets[t]) as number])) as Record<TargetName, number>;
    ctx.log(`${v.id} · ${ctx.placement.id}: hub :${hubPort}, forwards ${TARGET_NAMES.map((t) => `${t} :${ports[t]}`).join(', ')}`);

    return {
      ports,
      processes: reorder(processes),
      nominalRttMs: relayedRttMs(ctx.placement),
      capacityMBps: relayedCapacityMBps(ctx.placement),
      makeCold: () => makeCold(service),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Report order: hub, device proxy, service proxy, link emulator. */
function reorder(ps: Array<{ pid: number; role: string }>): Array<{ pid: number; role: string }> {
  const order = ['hub', 'device proxy', 'service proxy', 'link emulator'];
  return [...ps].sort((a, b) => order.indexOf(a.role) - order.indexOf(b.role));
}

/** SIGUSR2 to the service proxy, then wait until it reports the stream closed. */
async function makeCold(service: Child): Promise<void> {
  const dropped = waitForLine(
    service,
    'stderr',
    (_l, j) => (j?.msg === 'device stream dropped' ? true : undefined),
    MAKE_COLD_TIMEOUT_MS,
    'device stream dropped',
  );
  service.proc.kill('SIGUSR2');
  await dropped;
}

async function cliReason(): Promise<string | undefined> {
  return fs.existsSync(CLI_MAIN) ? undefined : `compiled CLI missing (${CLI_MAIN}); run npm run build`;
}

function tunnelPath(v: Variant): BenchPath {
  return {
    id: v.id,
    title: v.title,
    ...(v.only !== undefined ? { only: v.only } : {}),
    unavailableReason: cliReason,
    start: (ctx) => startTunnel(v, ctx),
  };
}

/** Loopback one-connection throughput only: where encryption's and the workers' cost shows. */
const VARIANT_ONLY = { scenarios: ['bulk-1'], placements: ['loopback'] } as const;

export const devstreamsPath = tunnelPath({
  id: DEVSTREAMS_PATH_ID,
  title: `devstreams tunnel (service proxy -> hub -> device proxy), end-to-end encrypted, inline; node ${RECOMMENDED_NODE_FLAGS.join(' ')} as deploy/ runs it`,
  serviceArgs: [],
  deviceArgs: [],
});

export const devstreamsPlainPath = tunnelPath({
  id: DEVSTREAMS_PLAIN_PATH_ID,
  title: 'devstreams tunnel without end-to-end encryption (--plaintext; loopback bulk only)',
  serviceArgs: ['--plaintext'],
  deviceArgs: ['--allow-plaintext'],
  only: VARIANT_ONLY,
});

export const devstreamsWorkersPath = tunnelPath({
  id: DEVSTREAMS_WORKERS_PATH_ID,
  title: 'devstreams tunnel, records sealed on worker threads (--crypto workers; loopback bulk only)',
  serviceArgs: ['--crypto', 'workers'],
  deviceArgs: ['--crypto', 'workers'],
  only: VARIANT_ONLY,
});

/**
 * Interactive first: both proxies with `--queue-target-ms 1` (the delay-based in-flight
 * controller all the time; by default it counts only while an interactive channel talks beside
 * a transfer). On loopback, where the latency it buys and the throughput it costs show side by
 * side with the default.
 */
export const devstreamsQueueTargetPath = tunnelPath({
  id: DEVSTREAMS_QUEUE_TARGET_PATH_ID,
  title:
    'devstreams tunnel with --queue-target-ms 1 on both proxies (delay-based in-flight controller; loopback bulk and interactive only)',
  serviceArgs: ['--queue-target-ms', '1'],
  deviceArgs: ['--queue-target-ms', '1'],
  only: { scenarios: ['bulk-1', 'interactive', 'interactive-100'], placements: ['loopback'] },
});
