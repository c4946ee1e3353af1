/**
 * Fleet benchmark: stream setup rate with one, two and three hub nodes on one private Redis.
 * Each node is a child process; devices spread over the nodes round-robin (GatewayHostName),
 * and service requests spread over the nodes too, so with N nodes (N-1)/N of the requests are
 * forwarded through Redis to the device's node. Clients run in this process. The measurement
 * itself is hub-bench's `measureStreamSetups`. Run standalone:
 * `npm run build && node dist/bench/standalone/fleet-bench.js`.
 */
import { cpus } from 'node:os';
import { pathToFileURL } from 'node:url';
import { formatConnectionString } from '../../src/auth/connection-string.js';
import { RedisRegistry } from '../../src/hub/fleet/redis-registry.js';
import { closeRedis, connectRedis } from '../../src/hub/fleet/redis.js';
import { measureStreamSetups, startChild, type Child } from './hub-bench.js';
import { hasRedisServer, startRedis } from '../redis-server.js';
import { markdownTable } from '../markdown-table.js';
import { registerModule } from '../report/registry.js';

export interface FleetBenchOptions {
  /** Node counts to measure. */
  nodes?: number[];
  /** Seconds per setup-rate run. */
  seconds?: number;
  /** Seconds of setups before the measurement (fresh nodes compile their hot paths first). */
  warmupSeconds?: number;
  /** Concurrent stream setups in flight. */
  concurrency?: number;
  /** Devices, spread over the nodes. */
  devices?: number;
}

export interface FleetBenchRow {
  nodes: number;
  streamsPerSecond: number;
  completed: number;
  failed: number;
  /** Hub CPU (all nodes) per stream setup, ms. */
  hubCpuMsPerStream: number;
  /** Redis CPU per stream setup, ms. */
  redisCpuMsPerStream: number;
}

export interface FleetBenchResult {
  cpuCount: number;
  rows: FleetBenchRow[];
  /** Set when the bench could not run (no redis-server). */
  skipped?: string;
}

const PUBLIC_HOST = 'fleet.bench';

async function runOne(nodes: number, o: Required<FleetBenchOptions>): Promise<FleetBenchRow> {
  const redis = await startRedis();
  const prefix = `bench${nodes}:`;
  const children: Child[] = [];
  try {
    for (let i = 0; i < nodes; i++) children.push(await startChild(['fleet', redis.url, prefix, PUBLIC_HOST]));
    const conn = await connectRedis(redis.url, { reconnect: false });
    const reg = await RedisRegistry.open({ redis: conn, keyPrefix: prefix });
    const recs = await reg.addDevices(Array.from({ length: o.devices }, (_, i) => `bench-${i}`));
    const serviceKey = reg.policyKey('service')!;
    await closeRedis(conn);
    const gw = (i: number): string => `127.0.0.1:${children[i % nodes]!.port}`;
    const devices = recs.map((r, i) =>
      formatConnectionString({
        kind: 'device',
        hostName: PUBLIC_HOST,
        transport: 'ws',
        deviceId: r.deviceId,
        sharedAccessKey: r.key,
        gatewayHostName: gw(i),
      }),
    );
    // Service i enters at node i+1: with several nodes most requests land away from the device.
    const services = children.map((_, i) =>
      formatConnectionString({
        kind: 'policy',
        hostName: PUBLIC_HOST,
        transport: 'ws',
        policy: 'service',
        sharedAccessKey: serviceKey,
        gatewayHostName: gw(i + 1),
      }),
    );
    const m = await measureStreamSetups(
      { devices, services, hubPids: children.map((c) => c.proc.pid!), otherPids: [redis.pid] },
      o.seconds,
      o.concurrency,
      o.warmupSeconds,
    );
    const redisMs = m.otherCpuMs;
    return {
      nodes,
      streamsPerSecond: Math.round(m.rate),
      completed: m.completed,
      failed: m.failed,
      hubCpuMsPerStream: Math.round(m.hubCpuMs * 100) / 100,
      redisCpuMsPerStream: Math.round(redisMs * 1000) / 1000,
    };
  } finally {
    for (const c of children) await c.stop();
    await redis.stop();
  }
}

/** Measures stream setup rate for each node count. */
export async function runFleetBench(options: FleetBenchOptions = {}): Promise<FleetBenchResult> {
  const o: Required<FleetBenchOptions> = { nodes: [1, 2, 3], seconds: 2, warmupSeconds: 1, concurrency: 128, devices: 12, ...options };
  const cpuCount = cpus().length;
  if (!hasRedisServer) return { cpuCount, rows: [], skipped: 'redis-server is not installed (apt-get install -y redis-server)' };
  const rows: FleetBenchRow[] = [];
  for (const n of o.nodes) rows.push(await runOne(n, o));
  return { cpuCount, rows };
}

export function fleetBenchMarkdown(r: FleetBenchResult): string {
  if (r.skipped) return `Not measured: ${r.skipped}.\n`;
  const table = markdownTable(
    ['nodes', 'streams/s', 'hub CPU ms/stream (all nodes)', 'Redis CPU ms/stream', 'streams'],
    r.rows.map((x) =>
      [x.nodes, x.streamsPerSecond, x.hubCpuMsPerStream, x.redisCpuMsPerStream, `${x.completed} (${x.failed} failed)`].map(String),
    ),
  );
  return `Stream setup (request, device accepts, both sides connect, one byte echoed, close) with the
hub split over 1-3 node processes sharing one Redis; requests enter at a node other than the
device's whenever there are several, so they are forwarded over Redis pub/sub. Clients, nodes
and Redis all share this machine's ${r.cpuCount} CPUs: with ${r.cpuCount} cores more nodes
cannot add throughput here; what the rows show is the cost of forwarding (hub CPU per stream,
summed over nodes) and that Redis is not the bottleneck (Redis CPU per stream).

${table}
`;
}

registerModule({
  id: 'fleet',
  title: 'Hub fleet: stream setup with 1, 2, 3 nodes on Redis',
  order: 62,
  collect: async (ctx) => {
    ctx.progress('fleet stream setup 1-3 nodes');
    return runFleetBench(ctx.quick ? { seconds: 1, warmupSeconds: 0.25, concurrency: 32 } : {});
  },
  render: (data) => (data === undefined ? undefined : fleetBenchMarkdown(data as FleetBenchResult)),
});

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await runFleetBench();
  process.stdout.write(`fleet bench (${r.cpuCount} CPUs)\n${fleetBenchMarkdown(r)}${JSON.stringify(r)}\n`);
}
