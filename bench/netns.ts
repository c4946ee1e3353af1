// Real packet loss for an emulated leg: a veth pair between this network namespace and one the
// bench creates, with nftables rules that drop a random share of the TCP segments arriving on
// either end. The user-space link emulator relays a byte stream and cannot lose a packet; a TCP
// connection that crosses the veth does, and recovers as TCP does (fast retransmit, loss probe,
// retransmission timeout, congestion window cut).
//
// Layout of one lossy link (the host is the bench's own namespace):
//   host 10.213.X.1 (veth <name>h) <-> (veth <name>n) 10.213.X.2 in namespace dsbench-loss-<pid>-<n>
// The drops are netfilter `netdev` ingress chains on each end: one in the namespace (segments
// from the host), one in a table of the bench's own in the host (segments from the namespace).
// Ingress, not egress: a segment dropped on the way out is reported to the sending TCP as a local
// drop (it backs off but does not count it lost); one dropped on arrival is lost on the wire.
// Only TCP to or from the namespace's relay ports (LOSSY_RELAY_PORTS) is dropped, so a relay in
// the namespace that connects back to the host crosses the veth again without loss.
// Both ends segment to MTU size (gso_max_segs 1): a veth otherwise passes 64 KiB GSO packets,
// and dropping one would lose dozens of segments at once.
//
// Every namespace, veth and table is named after this process (pid) and removed by name when
// its link is destroyed, when the process exits, and on SIGINT/SIGTERM; leftovers of a bench
// process that no longer runs (killed with SIGKILL) are removed before a new link is made.
// Nothing else is touched.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { PROCESS_READY_TIMEOUT_MS } from './config.js';
import { spawnChild, waitForLine, type Child } from './procs.js';

const run = promisify(execFile);

/** Namespace names: `dsbench-loss-<pid>-<n>`. */
export const LOSSY_NETNS_PREFIX = 'dsbench-loss-';
/** Host-side nftables table names (family netdev): `dsbench_loss_<pid>_<n>`. */
export const LOSSY_HOST_TABLE_PREFIX = 'dsbench_loss_';
/** Veth names: `dsbl<pid base 36>-<n base 36>h` (host end) and `...n` (namespace end); at most 15 characters. */
export const LOSSY_VETH_PREFIX = 'dsbl';
/** The /16 the veth pairs take their /30s from (host .1, namespace .2). */
export const LOSSY_SUBNET = '10.213';
/** Ports the relays inside a namespace listen on; loss applies to TCP to and from these only. */
export const LOSSY_RELAY_PORTS = { first: 20000, last: 20999 } as const;
/** Loss granularity: the rule draws a number in [0, LOSS_SCALE) and drops below percent x LOSS_SCALE / 100. */
export const LOSS_SCALE = 10_000;

/** One veth pair into a namespace of its own, dropping `lossPercent` of TCP segments each way. */
export interface LossyLink {
  readonly netns: string;
  readonly hostIf: string;
  readonly nsIf: string;
  readonly hostAddr: string;
  readonly nsAddr: string;
  readonly lossPercent: number;
  /** Port the i-th relay in the namespace listens on (i from 0). */
  relayPort(i: number): number;
  /** Segments dropped so far: toNs on the namespace's ingress, toHost on the host's. */
  drops(): Promise<{ toNs: number; toHost: number }>;
  /** Starts `node script args` inside the namespace; resolves with the JSON of its first stdout line. */
  spawnNodeReady<T>(script: string, args: readonly string[]): Promise<{ child: Child; ready: T }>;
  /** Removes the namespace, the veth pair and the host table (idempotent). */
  destroy(): Promise<void>;
}

interface Names {
  readonly netns: string;
  readonly hostIf: string;
  readonly nsIf: string;
  readonly hostTable: string;
}

function namesOf(pid: number, n: number): Names {
  const veth = `${LOSSY_VETH_PREFIX}${pid.toString(36)}-${n.toString(36)}`;
  return {
    netns: `${LOSSY_NETNS_PREFIX}${pid}-${n}`,
    hostIf: `${veth}h`,
    nsIf: `${veth}n`,
    hostTable: `${LOSSY_HOST_TABLE_PREFIX}${pid}_${n}`,
  };
}

const NS_TABLE = 'dsbench_loss';
const live = new Map<string, Names>();
/** Processes started inside each live namespace (by netns name): a namespace lives while one runs. */
const nsChildren = new Map<string, Set<number>>();
let counter = 0;
let handlersInstalled = false;

/** Synchronous removal by name (exit and signal handlers cannot wait); errors are ignored. */
function removeSync(n: Names): void {
  // Our own children inside the namespace first, by pid: a namespace outlives its name while a
  // process still runs in it.
  for (const pid of nsChildren.get(n.netns) ?? []) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already exited
    }
  }
  nsChildren.delete(n.netns);
  for (const args of [
    ['ip', 'link', 'del', n.hostIf],
    ['ip', 'netns', 'del', n.netns],
    ['nft', 'delete', 'table', 'netdev', n.hostTable],
  ] as const) {
    try {
      execFileSync(args[0], args.slice(1), { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
}

async function removeNames(n: Names): Promise<void> {
  // Deleting one end of a veth deletes both; the namespace goes once no process holds it.
  await run('ip', ['link', 'del', n.hostIf]).catch(() => undefined);
  await run('ip', ['netns', 'del', n.netns]).catch(() => undefined);
  await run('nft', ['delete', 'table', 'netdev', n.hostTable]).catch(() => undefined);
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.once('exit', () => {
    for (const n of live.values()) removeSync(n);
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const onSignal = (): void => {
      for (const n of live.values()) removeSync(n);
      live.clear();
      // Die of the signal as before (the default action), now that the links are gone.
      process.off(sig, onSignal);
      process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes namespaces, veths and host tables left by bench processes that no longer run. */
export async function removeStale(): Promise<string[]> {
  const removed: string[] = [];
  const netns = await run('ip', ['netns', 'list']).then(
    (r) => r.stdout,
    () => '',
  );
  for (const line of netns.split('\n')) {
    const m = new RegExp(`^${LOSSY_NETNS_PREFIX}(\\d+)-(\\d+)\\b`).exec(line.trim());
    if (m === null || alive(Number(m[1]))) continue;
    await removeNames(namesOf(Number(m[1]), Number(m[2])));
    removed.push(m[0]);
  }
  const tables = await run('nft', ['list', 'tables', 'netdev']).then(
    (r) => r.stdout,
    () => '',
  );
  for (const line of tables.split('\n')) {
    const m = new RegExp(`^table netdev (${LOSSY_HOST_TABLE_PREFIX}(\\d+)_(\\d+))$`).exec(line.trim());
    if (m === null || alive(Number(m[2]))) continue;
    await removeNames(namesOf(Number(m[2]), Number(m[3])));
    removed.push(m[1] as string);
  }
  return removed;
}

/** A /30 of LOSSY_SUBNET that no interface of this namespace uses yet. */
async function freeBlock(): Promise<{ hostAddr: string; nsAddr: string }> {
  const { stdout } = await run('ip', ['-4', '-o', 'addr', 'show']);
  for (let block = 0; block < 16_384; block++) {
    const base = block * 4;
    const prefix = `${LOSSY_SUBNET}.${base >> 8}.`;
    const hostAddr = `${prefix}${(base & 255) + 1}`;
    if (stdout.includes(` ${hostAddr}/`) || stdout.includes(` ${prefix}${(base & 255) + 2}/`)) continue;
    return { hostAddr, nsAddr: `${prefix}${(base & 255) + 2}` };
  }
  throw new Error(`no free /30 left in ${LOSSY_SUBNET}.0.0/16`);
}

function dropRule(port: 'dport' | 'sport', lossPercent: number): string {
  const below = Math.round((lossPercent * LOSS_SCALE) / 100);
  return `ip protocol tcp tcp ${port} ${LOSSY_RELAY_PORTS.first}-${LOSSY_RELAY_PORTS.last} numgen random mod ${LOSS_SCALE} < ${below} counter drop`;
}

async function nft(netns: string | undefined, script: string): Promise<void> {
  const cmd = netns === undefined ? ['nft', '-f', '-'] : ['ip', 'netns', 'exec', netns, 'nft', '-f', '-'];
  await new Promise<void>((resolve, reject) => {
    const c = execFile(cmd[0] as string, cmd.slice(1), (err, _out, stderr) =>
      err === null ? resolve() : reject(new Error(`nft: ${stderr.trim() || err.message}`)),
    );
    c.stdin?.end(script);
  });
}

async function dropCount(netns: string | undefined, table: string): Promise<number> {
  const args = ['list', 'table', 'netdev', table];
  const { stdout } = netns === undefined ? await run('nft', args) : await run('ip', ['netns', 'exec', netns, 'nft', ...args]);
  return Number(/counter packets (\d+)/.exec(stdout)?.[1] ?? 0);
}

/** Makes one lossy veth link (see the file comment). Root only; see lossUnavailableReason. */
export async function createLossyLink(lossPercent: number): Promise<LossyLink> {
  if (!(lossPercent > 0 && lossPercent < 100)) throw new Error(`loss must be in (0, 100) %, got ${lossPercent}`);
  installHandlers();
  await removeStale();
  const names = namesOf(process.pid, counter++);
  live.set(names.netns, names);
  const destroy = async (): Promise<void> => {
    if (!live.delete(names.netns)) return;
    nsChildren.delete(names.netns);
    await removeNames(names);
  };
  try {
    const { hostAddr, nsAddr } = await freeBlock();
    const ipc = async (...args: string[]): Promise<void> => {
      await run('ip', args);
    };
    await ipc('netns', 'add', names.netns);
    await ipc('link', 'add', names.hostIf, 'type', 'veth', 'peer', 'name', names.nsIf, 'netns', names.netns);
    await ipc('addr', 'add', `${hostAddr}/30`, 'dev', names.hostIf);
    await ipc('link', 'set', names.hostIf, 'gso_max_segs', '1', 'up');
    await ipc('-n', names.netns, 'addr', 'add', `${nsAddr}/30`, 'dev', names.nsIf);
    await ipc('-n', names.netns, 'link', 'set', names.nsIf, 'gso_max_segs', '1', 'up');
    await ipc('-n', names.netns, 'link', 'set', 'lo', 'up');
    await nft(
      names.netns,
      `table netdev ${NS_TABLE} {\n chain in { type filter hook ingress device "${names.nsIf}" priority 0; ${dropRule('dport', lossPercent)}; }\n}\n`,
    );
    await nft(
      undefined,
      `table netdev ${names.hostTable} {\n chain in { type filter hook ingress device "${names.hostIf}" priority 0; ${dropRule('sport', lossPercent)}; }\n}\n`,
    );
    return {
      netns: names.netns,
      hostIf: names.hostIf,
      nsIf: names.nsIf,
      hostAddr,
      nsAddr,
      lossPercent,
      relayPort(i) {
        const p = LOSSY_RELAY_PORTS.first + i;
        if (p > LOSSY_RELAY_PORTS.last)
          throw new Error(`more than ${LOSSY_RELAY_PORTS.last - LOSSY_RELAY_PORTS.first + 1} relays on one lossy link`);
        return p;
      },
      async drops() {
        return { toNs: await dropCount(names.netns, NS_TABLE), toHost: await dropCount(undefined, names.hostTable) };
      },
      async spawnNodeReady<T>(script: string, args: readonly string[]) {
        // `ip netns exec` execs the command, so the pid is node's.
        const child = spawnChild('ip', ['netns', 'exec', names.netns, process.execPath, script, ...args]);
        const pids = nsChildren.get(names.netns) ?? new Set<number>();
        nsChildren.set(names.netns, pids.add(child.pid));
        child.proc.once('exit', () => pids.delete(child.pid));
        try {
          const ready = await waitForLine(child, 'stdout', (_l, j) => j as T | undefined, PROCESS_READY_TIMEOUT_MS, 'ready line');
          return { child, ready };
        } catch (err) {
          await child.stop();
          throw err;
        }
      },
      destroy,
    };
  } catch (err) {
    await destroy();
    throw err;
  }
}

let probed: Promise<string | undefined> | undefined;

/**
 * Why this machine cannot make lossy links (not Linux, not root, no `ip` or `nft`, no network
 * namespaces, veth or nftables in the kernel), or undefined when it can: tried once for real
 * with a link that is made and removed at once.
 */
export function lossUnavailableReason(): Promise<string | undefined> {
  probed ??= (async () => {
    if (process.platform !== 'linux') return 'network namespaces are Linux only';
    if (process.getuid?.() !== 0) return 'needs root (network namespaces, veth, nftables)';
    for (const [cmd, pkg] of [
      ['ip', 'iproute2'],
      ['nft', 'nftables'],
    ] as const) {
      const found = await run('sh', ['-c', `command -v ${cmd}`]).then(
        () => true,
        () => false,
      );
      if (!found) return `${cmd} not installed (apt-get install -y ${pkg})`;
    }
    try {
      const link = await createLossyLink(1);
      await link.destroy();
      return undefined;
    } catch (err) {
      return `cannot make a lossy veth link here: ${(err as Error).message.split('\n')[0]}`;
    }
  })();
  return probed;
}
