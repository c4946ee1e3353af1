// The bench's lossy veth link (bench/netns.ts, used by the `cellular-lossy` placement): bytes
// through a lossy leg arrive intact while segments are really dropped and retransmitted, and the
// namespace, veth pair and nftables tables are gone afterwards: after stop(), after SIGINT, and
// (via the stale sweep) after the process was killed outright.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt } from './helpers/build.js';

const run = promisify(execFile);
// The compiled modules: the links start compiled child scripts next to them (dist/bench/procs).
ensureBuilt();
const DIST_NETNS = path.join(ROOT, 'dist', 'bench', 'netns.js');
const { LOSSY_HOST_TABLE_PREFIX, LOSSY_NETNS_PREFIX, lossUnavailableReason, removeStale } = (await import(
  pathToFileURL(DIST_NETNS).href
)) as typeof import('../bench/netns.js');
const { startLinks } = (await import(
  pathToFileURL(path.join(ROOT, 'dist', 'bench', 'paths', 'links.js')).href
)) as typeof import('../bench/paths/links.js');

// Needs root, iproute2, nftables and a kernel with network namespaces, veth and nf_tables; the
// reason is printed in the suite's name when it is skipped.
const why = await lossUnavailableReason();

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

async function echoServer(): Promise<number> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.pipe(s);
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  closers.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  });
  return (srv.address() as net.AddressInfo).port;
}

/** Sends `data` and collects as many bytes back from an echo. */
async function echoThrough(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const parts: Buffer[] = [];
    let got = 0;
    s.on('data', (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (got >= data.length) {
        s.destroy();
        resolve(Buffer.concat(parts));
      }
    });
    s.on('error', reject);
    s.write(data);
  });
}

/** True once `pid` no longer runs (gone, or a zombie its new parent has not reaped yet), polled for a bounded time. */
async function exitedSoon(pid: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return true;
    }
    if (/^\d+ \(.*\) Z/.test(stat)) return true;
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

/** Every name of ours (this test's or its children's pids) in netns, links and nft tables. */
async function leftovers(pid: number): Promise<string[]> {
  const [ns, links, tables] = await Promise.all([
    run('ip', ['netns', 'list']),
    run('ip', ['-o', 'link', 'show']),
    run('nft', ['list', 'tables']),
  ]);
  const veth = `dsbl${pid.toString(36)}-`;
  return [
    ...ns.stdout.split('\n').filter((l) => l.startsWith(`${LOSSY_NETNS_PREFIX}${pid}-`)),
    ...links.stdout.split('\n').filter((l) => l.includes(` ${veth}`)),
    ...tables.stdout.split('\n').filter((l) => l.includes(`${LOSSY_HOST_TABLE_PREFIX}${pid}_`)),
  ];
}

async function nstat(netns: string, counter: string): Promise<number> {
  const { stdout } = await run('ip', ['netns', 'exec', netns, 'nstat', '-az', counter]);
  return Number(new RegExp(`${counter}\\s+(\\d+)`).exec(stdout)?.[1] ?? 0);
}

const DIST_LINKS_MAIN = path.join(ROOT, 'dist', 'bench', 'procs', 'links-main.js');

/**
 * Starts a child node that makes one lossy link and starts a link emulator (one idle relay) inside
 * its namespace, prints both, then idles.
 */
function childWithLink(): Promise<{ pid: number; netns: string; nsPid: number; exited: Promise<NodeJS.Signals | null> }> {
  const code = `import { createLossyLink } from ${JSON.stringify(DIST_NETNS)};
const l = await createLossyLink(1);
const spec = [{ targetHost: '127.0.0.1', targetPort: 9, leg: { oneWayMs: 0, jitterMs: 0, mbps: 0 } }];
const r = await l.spawnNodeReady(${JSON.stringify(DIST_LINKS_MAIN)}, [Buffer.from(JSON.stringify(spec)).toString('base64url')]);
process.stdout.write(JSON.stringify({ netns: l.netns, nsPid: r.child.pid }) + '\\n');
setInterval(() => {}, 1000);`;
  const c = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<NodeJS.Signals | null>((r) => c.once('exit', (_code, sig) => r(sig)));
  return new Promise((resolve, reject) => {
    let buf = '';
    c.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      if (buf.includes('\n')) resolve({ pid: c.pid as number, ...(JSON.parse(buf) as { netns: string; nsPid: number }), exited });
    });
    c.once('exit', (n) => reject(new Error(`child exited (${n}) before making its link`)));
  });
}

describe.skipIf(why !== undefined)(`lossy veth link${why === undefined ? '' : ` (skipped: ${why})`}`, () => {
  it('drops and retransmits real TCP segments, delivers every byte, and leaves nothing behind', async () => {
    const target = await echoServer();
    // 5 % each way on a leg with no delay, so that 2 MiB each way meets a few hundred drops.
    const links = await startLinks([
      { targetHost: '127.0.0.1', targetPort: target, leg: { oneWayMs: 0, jitterMs: 0, mbps: 0, lossPercent: 5 } },
    ]);
    let stopped = false;
    closers.push(async () => {
      if (!stopped) await links.child.stop();
    });
    const lossy = links.lossy;
    expect(lossy).toBeDefined();
    if (lossy === undefined) return;
    const before = await nstat(lossy.netns, 'TcpRetransSegs');
    const data = Buffer.alloc(2 * 1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31 + (i >> 9)) & 0xff;
    const back = await echoThrough(links.ports[0] as number, data);
    expect(back.equals(data)).toBe(true);
    const drops = await lossy.drops();
    // Drops on both ingresses: host -> namespace and namespace -> host.
    expect(drops.toNs).toBeGreaterThan(0);
    expect(drops.toHost).toBeGreaterThan(0);
    // The relay in the namespace sends the echo towards the host: its drops are retransmitted there.
    expect(await nstat(lossy.netns, 'TcpRetransSegs')).toBeGreaterThan(before);
    await links.child.stop();
    stopped = true;
    expect(await leftovers(process.pid)).toEqual([]);
  });

  it('removes the link when the process is interrupted (SIGINT) and dies of the signal', async () => {
    const child = await childWithLink();
    expect((await run('ip', ['netns', 'list'])).stdout).toContain(child.netns);
    process.kill(child.pid, 'SIGINT');
    expect(await child.exited).toBe('SIGINT');
    expect(await leftovers(child.pid)).toEqual([]);
    // Its process inside the namespace is gone too (it would keep the unnamed namespace alive).
    expect(await exitedSoon(child.nsPid)).toBe(true);
  });

  it('sweeps the link of a process killed outright (SIGKILL) before making a new one', async () => {
    const child = await childWithLink();
    process.kill(child.pid, 'SIGKILL');
    await child.exited;
    // The orphan in the namespace is ours (this test started its parent): end it by pid.
    process.kill(child.nsPid, 'SIGKILL');
    expect((await leftovers(child.pid)).length).toBeGreaterThan(0);
    const removed = await removeStale();
    expect(removed).toContain(child.netns);
    expect(await leftovers(child.pid)).toEqual([]);
  });
});

describe('lossy placement in the report', () => {
  it('shows its loss, and a machine that cannot run it gets a note instead of rows', async () => {
    const { renderReport } = await import('../bench/report/markdown.js');
    const { PLACEMENTS, findPlacement, hasLoss } = await import('../bench/placements.js');
    const lossy = findPlacement('cellular-lossy');
    expect(lossy !== undefined && hasLoss(lossy)).toBe(true);
    // Only the lossy variant loses packets; the plain cellular placement stays lossless.
    expect(PLACEMENTS.filter(hasLoss).map((p) => p.id)).toEqual(['cellular-lossy']);
    const base = {
      version: 1 as const,
      startedAt: 'a',
      finishedAt: 'b',
      quick: false,
      argv: [],
      machine: { cpuModel: 'cpu', cpuCount: 1, ramBytes: 1, os: 'os', node: 'v20', openssh: undefined, gitCommit: undefined },
      paths: [{ id: 'direct', title: 'direct TCP' }],
      scenarios: ['rtt'],
      records: [],
      modules: {},
    };
    const ran = renderReport({ ...base, placements: lossy === undefined ? [] : [lossy] }, { charts: {}, jsonRel: 'x.json' });
    expect(ran).toMatch(/^\| cellular-lossy \| 50\.0 ms RTT \+0-20 ms jitter, 20 Mbit\/s, 1 % loss each way \|/m);
    const skipped = renderReport(
      { ...base, placements: [], skippedPlacements: { 'cellular-lossy': 'needs root (network namespaces, veth, nftables)' } },
      { charts: {}, jsonRel: 'x.json' },
    );
    expect(skipped).toContain('Placement `cellular-lossy` skipped: needs root (network namespaces, veth, nftables).');
  });
});
