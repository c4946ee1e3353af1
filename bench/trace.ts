// Report module `trace`: "Where the round trip goes". Starts the tunnel on loopback with
// DEVSTREAMS_TRACE set (src/util/trace.ts: each process stamps points on the monotonic clock
// every process shares), sends idle 64-byte round trips a few ms apart, stamps the bench client's
// own write and read on the same clock, and splits each round trip into the hops between
// consecutive points: client -> service proxy socket read -> mux -> resume layer -> seal ->
// stream socket write -> hub read -> hub write -> device proxy read -> open -> resume layer, mux -> target
// write -> echo -> and the same way back. The rows are means over round trips, so they add up to
// the mean traced round trip; the check line compares that sum with the client's own timing.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { RTT_PAYLOAD_BYTES } from './config.js';
import { iperf3Load, iperf3Unavailable, startIperf3Server } from './iperf3.js';
import { devstreamsPath } from './paths/devstreams.js';
import type { RunningPath } from './paths/types.js';
import { findPlacement, type Placement } from './placements.js';
import { benchScript, spawnNodeReady, type Child } from './procs.js';
import { registerModule } from './report/registry.js';
import { metric } from './results.js';
import type { TargetPorts } from './targets.js';
import { TRACE_ENV, TRACE_FLUSH_MS } from '../src/util/trace.js';

/**
 * Per round: round trips thrown away first (JIT, windows), idle round trips kept, round trips under bulk. Each round runs an
 * untraced tunnel, then a traced one (paired rounds: the trace's cost is judged per round, not across a machine's swings).
 */
export const TRACE_BUDGET = {
  quick: { rounds: 1, warmup: 300, samples: 50, loaded: 50 },
  full: { rounds: 3, warmup: 700, samples: 170, loaded: 70 },
} as const;
/** Pause between interactive round trips under bulk (a typist), and the bulk's head start (ms). */
export const TRACE_LOADED_GAP_MS = 1;
export const TRACE_BULK_LEAD_MS = 300;
/** Longest the loaded loop may take (ms). */
export const TRACE_LOADED_TIMEOUT_MS = 15_000;
/**
 * Round trips kept for the means: those up to this quantile of their own loop. The slowest are
 * scheduling stalls (a process not run for ms on a shared machine) that would swamp a mean; the
 * traced and untraced loops are trimmed alike.
 */
export const TRACE_KEEP_QUANTILE = 0.9;
/** The breakdown must add up to the measured round trip within this fraction. */
export const TRACE_SUM_TOLERANCE = 0.1;

type Role = 'client' | 'service-proxy' | 'hub' | 'device-proxy';
interface Hop {
  readonly role: Role;
  readonly point: string;
}

/** The points of one round trip, in order. */
const SEQUENCE: readonly Hop[] = [
  { role: 'client', point: 'send' },
  { role: 'service-proxy', point: 'sock.read' },
  { role: 'service-proxy', point: 'seal' },
  { role: 'service-proxy', point: 'sealed' },
  { role: 'service-proxy', point: 'ws.send' },
  { role: 'hub', point: 'hub.read.service' },
  { role: 'hub', point: 'hub.write.device' },
  { role: 'device-proxy', point: 'ws.read' },
  { role: 'device-proxy', point: 'open' },
  { role: 'device-proxy', point: 'opened' },
  { role: 'device-proxy', point: 'sock.write' },
  { role: 'device-proxy', point: 'sock.read' },
  { role: 'device-proxy', point: 'seal' },
  { role: 'device-proxy', point: 'sealed' },
  { role: 'device-proxy', point: 'ws.send' },
  { role: 'hub', point: 'hub.read.device' },
  { role: 'hub', point: 'hub.write.service' },
  { role: 'service-proxy', point: 'ws.read' },
  { role: 'service-proxy', point: 'open' },
  { role: 'service-proxy', point: 'opened' },
  { role: 'service-proxy', point: 'sock.write' },
  { role: 'client', point: 'recv' },
];

/** What happens between point i and point i+1, and where. */
const HOPS: ReadonlyArray<readonly [string, string]> = [
  ['kernel', 'bench client write -> service proxy socket read (loopback TCP, wake-up)'],
  ['service proxy', 'socket read -> mux: channel write, flush at the end of the loop turn, DATA frame -> resumable layer (replay buffer)'],
  ['service proxy', 'seal (AES-GCM record)'],
  ['service proxy', 'sealed record -> websocket send'],
  ['kernel', 'service proxy stream write -> hub read'],
  ['hub', 'read -> write (frame splice)'],
  ['kernel', 'hub write -> device proxy stream read'],
  ['device proxy', 'stream read -> websocket unframe -> record layer'],
  ['device proxy', 'open (AES-GCM record)'],
  ['device proxy', 'resumable layer, mux: frame decode, channel delivery -> target socket write'],
  ['kernel + echo', 'device proxy target write -> echo server -> device proxy target read'],
  [
    'device proxy',
    'target socket read -> mux: channel write, flush at the end of the loop turn, DATA frame -> resumable layer (replay buffer)',
  ],
  ['device proxy', 'seal (AES-GCM record)'],
  ['device proxy', 'sealed record -> websocket send'],
  ['kernel', 'device proxy stream write -> hub read'],
  ['hub', 'read -> write (frame splice)'],
  ['kernel', 'hub write -> service proxy stream read'],
  ['service proxy', 'stream read -> websocket unframe -> record layer'],
  ['service proxy', 'open (AES-GCM record)'],
  ['service proxy', 'resumable layer, mux: frame decode, channel delivery -> client socket write'],
  ['kernel', 'service proxy client write -> bench client read (loopback TCP, wake-up)'],
];

export interface TraceHopRow {
  readonly where: string;
  readonly what: string;
  readonly meanUs: number;
  readonly p50Us: number;
}

export interface TraceResult {
  readonly rows: TraceHopRow[];
  /** Round trips whose every point was found. */
  readonly matched: number;
  readonly samples: number;
  /** Mean of the client's own round-trip timing over the matched round trips (us). */
  readonly measuredMeanUs: number;
  readonly measuredP50Us: number;
  /** The same loop through a tunnel started without tracing: p50 and mean (us). */
  readonly untracedP50Us: number;
  readonly untracedMeanUs: number;
  /** Per paired round: the traced idle loop's trimmed mean over the untraced one's, minus 1. */
  readonly roundDiffs: number[];
  readonly loaded?: LoadedResult;
}

/**
 * The interactive round trip under iperf3 bulk, one row per queue it waits in (see LOADED_ROWS):
 * means over the round trips whose every point was found, so the rows add up to their mean.
 */
export interface LoadedResult {
  readonly rows: TraceHopRow[];
  readonly matched: number;
  readonly samples: number;
  /** Mean of the client's own timing over the matched round trips (= the rows' sum), and its p50 (us). */
  readonly measuredMeanUs: number;
  readonly measuredP50Us: number;
  /** Mean over every traced loaded round trip, matched or not (us). */
  readonly allMeanUs: number;
  /** The same loaded loop through a tunnel started without tracing: mean and p50 (us); undefined if it did not run. */
  readonly untracedMeanUs: number | undefined;
  readonly untracedP50Us: number | undefined;
  /** Mean bytes already in the sending proxy's websocket socket buffer when the record was handed to it, per direction. */
  readonly queuedAheadBytes: { readonly toDevice: number; readonly toService: number };
  /**
   * Mean bytes of earlier records the next process had not finished reading when the record reached the kernel: in the kernel's
   * queues ahead of it (sent minus read, from the stamps), on each of the four socket hops in round-trip order.
   */
  readonly kernelAheadBytes: readonly number[];
  readonly bulkMBps: number | undefined;
  readonly untracedBulkMBps: number | undefined;
  /** Per paired round: the traced loaded loop's mean over the untraced one's, minus 1. */
  readonly roundDiffs: number[];
}

interface LoadedRaw {
  readonly windows: Array<[bigint, bigint]>;
  readonly clientPort: number;
  readonly svcPort: number;
  readonly bulkMBps: number | undefined;
}

async function underBulk(running: RunningPath, client: TraceClient, samples: number, progress: (d: string) => void): Promise<LoadedRaw> {
  progress(`${samples} round trips under iperf3 bulk`);
  const load = iperf3Load(running.ports.iperf, Math.ceil(TRACE_LOADED_TIMEOUT_MS / 1000) + 5);
  try {
    await new Promise((r) => setTimeout(r, TRACE_BULK_LEAD_MS));
    const windows: Array<[bigint, bigint]> = [];
    const deadline = Date.now() + TRACE_LOADED_TIMEOUT_MS;
    for (let i = 0; i < samples && Date.now() < deadline; i++) {
      windows.push(await client.roundTrip());
      await new Promise((r) => setTimeout(r, TRACE_LOADED_GAP_MS));
    }
    const rate = await load.finish();
    return { windows, clientPort: client.localPort, svcPort: running.ports.echo, bulkMBps: rate?.MBps };
  } finally {
    await load.child.stop();
  }
}

interface Event {
  readonly t: bigint;
  readonly role: Role;
  readonly point: string;
  /** What follows the point name: ports, channel ids, message numbers (see the hooks). */
  readonly args: readonly string[];
  /** args[0]: `localPort:remotePort` on the proxies' socket points. */
  readonly tag?: string;
}

/** One process's events in time order, with the searches the matching needs. */
class Timeline {
  /** Intervals in which the resumable layer held the mux (rs.hold -> rs.go), with the reason. */
  readonly holds: Array<{ from: bigint; to: bigint; reason: string }> = [];

  constructor(readonly events: readonly Event[]) {
    let open: { from: bigint; reason: string } | undefined;
    for (const e of events) {
      if (e.point === 'rs.hold' && open === undefined) open = { from: e.t, reason: e.args[0] ?? '' };
      else if (e.point === 'rs.go' && open !== undefined) {
        this.holds.push({ ...open, to: e.t });
        open = undefined;
      }
    }
  }

  private readonly sent = new Map<string, number[]>();

  /** Bytes of the websocket messages 1..k sent on the connection from `port`: prefix[k] (from `ws.send`). */
  sentPrefix(port: string): number[] {
    let prefix = this.sent.get(port);
    if (prefix === undefined) {
      prefix = [0];
      for (const e of this.events)
        if (e.point === 'ws.send' && e.args[0] === port)
          prefix[Number(e.args[1])] = (prefix[prefix.length - 1] ?? 0) + Number(e.args[3] ?? 0);
      this.sent.set(port, prefix);
    }
    return prefix;
  }

  /** Index of the first event at or after `t`. */
  at(t: bigint): number {
    let lo = 0;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.events[mid] as Event).t < t) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Index of the first event from `i` on that `ok` accepts, no later than `until`; -1 if none. */
  next(i: number, until: bigint, ok: (e: Event) => boolean): number {
    for (; i < this.events.length && (this.events[i] as Event).t <= until; i++) if (ok(this.events[i] as Event)) return i;
    return -1;
  }

  /** Index of the last event before `i` that `ok` accepts, no earlier than `since`; -1 if none. */
  prev(i: number, since: bigint, ok: (e: Event) => boolean): number {
    for (i--; i >= 0 && (this.events[i] as Event).t >= since; i--) if (ok(this.events[i] as Event)) return i;
    return -1;
  }

  t(i: number): bigint {
    return (this.events[i] as Event).t;
  }

  /** Time (ns) within [a, b] the resumable layer held the mux, per reason. */
  held(a: bigint, b: bigint): Map<string, bigint> {
    const out = new Map<string, bigint>();
    for (const h of this.holds) {
      const from = h.from > a ? h.from : a;
      const to = h.to < b ? h.to : b;
      if (to > from) out.set(h.reason, (out.get(h.reason) ?? 0n) + (to - from));
    }
    return out;
  }
}

/**
 * One direction of the interactive message through the tunnel, as the times of its points:
 * sending proxy socket read -> mux take -> sealed and handed to the websocket -> written to the
 * kernel -> hub read of the chunk that ends its record's frame -> hub write -> written -> receiving
 * proxy read of the chunk that ends the message -> message -> opened -> target socket write.
 * The record is found by its frame: the mux stamps the channel whose bytes it takes into a batch,
 * the batch is sealed and sent in the same call (so the next `seal`/`ws.send` of that process are
 * its record's), and the websocket message number `k` is counted alike by the sender, the hub
 * (frames it passes on) and the receiver, which ties the three processes' points to that record.
 */
interface Leg {
  read: bigint;
  take: bigint;
  send: bigint;
  queuedAhead: number;
  written: bigint;
  hubRead: bigint;
  hubWrite: bigint;
  hubWritten: bigint;
  recvRead: bigint;
  recvMsg: bigint;
  opened: bigint;
  targetWrite: bigint;
  heldInflight: bigint;
  heldLink: bigint;
  /** Bytes of the records sent before it that the hub, then the receiver, had not finished reading when it was handed over. */
  kernelAheadToHub: number;
  kernelAheadToReceiver: number;
}

function matchLeg(
  from: Timeline,
  hub: Timeline,
  to: Timeline,
  start: bigint,
  end: bigint,
  fromTag: string,
  fromChan: string,
  toTag: string,
  toSide: 'device' | 'service',
): Leg | undefined {
  const fromSide = toSide === 'device' ? 'service' : 'device';
  const iRead = from.next(from.at(start), end, (e) => e.point === 'sock.read' && e.tag === fromTag);
  if (iRead < 0) return undefined;
  const iTake = from.next(iRead, end, (e) => e.point === 'mux.take' && e.args[0] === fromChan);
  if (iTake < 0) return undefined;
  const iSend = from.next(iTake, end, (e) => e.point === 'ws.send');
  if (iSend < 0) return undefined;
  const [port, k, queued] = (from.events[iSend] as Event).args;
  const iWritten = from.next(iSend, end, (e) => e.point === 'ws.written' && e.args[0] === port && e.args[1] === k);
  const iFrame = hub.next(hub.at(from.t(iSend)), end, (e) => e.point === `hub.frame.${toSide}` && e.args[1] === k);
  if (iWritten < 0 || iFrame < 0) return undefined;
  const iHubRead = hub.prev(iFrame, start, (e) => e.point === `hub.read.${fromSide}` && e.args[0] === port);
  const iHubWrite = hub.next(iFrame, end, (e) => e.point === `hub.write.${toSide}`);
  if (iHubRead < 0 || iHubWrite < 0) return undefined;
  const [toPort, flush] = (hub.events[iHubWrite] as Event).args;
  const iHubWritten = hub.next(iHubWrite, end, (e) => e.point === `hub.written.${toSide}` && e.args[0] === toPort && e.args[1] === flush);
  const iMsg = to.next(to.at(hub.t(iHubWrite)), end, (e) => e.point === 'ws.msg' && e.args[0] === toPort && e.args[1] === k);
  if (iHubWritten < 0 || iMsg < 0) return undefined;
  const iRecvRead = to.prev(iMsg, start, (e) => e.point === 'ws.read' && e.args[0] === toPort);
  const iOpened = to.next(iMsg, end, (e) => e.point === 'opened');
  const iTarget = iOpened < 0 ? -1 : to.next(iOpened, end, (e) => e.point === 'sock.write' && e.tag === toTag);
  if (iRecvRead < 0 || iTarget < 0) return undefined;
  // The target write must come from this record: no other message between it and the one matched.
  if (to.prev(iTarget, to.t(iMsg), (e) => e.point === 'ws.msg' && e.args[0] === toPort) !== iMsg) return undefined;
  const held = from.held(from.t(iRead), from.t(iTake));
  // Records still in the kernel ahead of it at each hand-over: those the next process had not finished reading.
  const prefix = from.sentPrefix(port as string);
  const kn = Number(k);
  const hubDone = hub.prev(hub.at(from.t(iWritten) + 1n), start, (e) => e.point === `hub.frame.${toSide}` && e.args[0] === toPort);
  const recvDone = to.prev(to.at(hub.t(iHubWritten) + 1n), start, (e) => e.point === 'ws.msg' && e.args[0] === toPort);
  const ahead = (tl: Timeline, done: number): number =>
    done < 0 ? Number.NaN : Math.max(0, (prefix[kn - 1] ?? 0) - (prefix[Number((tl.events[done] as Event).args[1])] ?? 0));
  return {
    read: from.t(iRead),
    take: from.t(iTake),
    send: from.t(iSend),
    queuedAhead: Number(queued ?? 0),
    written: from.t(iWritten),
    hubRead: hub.t(iHubRead),
    hubWrite: hub.t(iHubWrite),
    hubWritten: hub.t(iHubWritten),
    recvRead: to.t(iRecvRead),
    recvMsg: to.t(iMsg),
    opened: to.t(iOpened),
    targetWrite: to.t(iTarget),
    heldInflight: (held.get('inflight') ?? 0n) + (held.get('pacer') ?? 0n),
    heldLink: (held.get('link') ?? 0n) + (held.get('suspended') ?? 0n),
    kernelAheadToHub: ahead(hub, hubDone),
    kernelAheadToReceiver: ahead(to, recvDone),
  };
}

/** The rows of one direction, from its leg's points: [where, what, ns]. */
function legRows(leg: Leg, sender: string, receiver: string): Array<[string, string, bigint]> {
  const inMux = leg.take - leg.read;
  return [
    [sender, 'mux queue, held by the resumable layer: in-flight bound reached or paced (rs.hold -> rs.go)', leg.heldInflight],
    [sender, 'mux queue, held by the connection below: websocket socket buffer past its high-water mark', leg.heldLink],
    [
      sender,
      "mux queue, the rest: the flush waiting for the end of the loop turn (setImmediate) behind the turn's other I/O, scheduler turns behind bulk (socket read -> frame taken into a batch)",
      inMux - leg.heldInflight - leg.heldLink,
    ],
    [sender, 'record layer: batch -> sealed (AES-GCM over the whole batch) -> resumable layer -> websocket framing', leg.send - leg.take],
    [
      sender,
      'websocket socket buffer in user space: socket.write -> bytes accepted by the kernel (write callback)',
      leg.written - leg.send,
    ],
    [
      'kernel',
      `${sender} socket -> hub read of the chunk ending the record: kernel send + receive queues, hub wake-up`,
      leg.hubRead - leg.written,
    ],
    ['hub', 'splice: read -> frame passed on -> socket write', leg.hubWrite - leg.hubRead],
    ['hub', 'socket buffer in user space: socket.write -> bytes accepted by the kernel', leg.hubWritten - leg.hubWrite],
    [
      'kernel',
      `hub socket -> ${receiver} read of the chunk ending the message: kernel send + receive queues, wake-up`,
      leg.recvRead - leg.hubWritten,
    ],
    [receiver, 'the same read: records ahead of it unframed, opened and delivered first', leg.recvMsg - leg.recvRead],
    [receiver, 'record layer: open (AES-GCM over the whole record)', leg.opened - leg.recvMsg],
    [receiver, 'resumable layer, mux: frames decoded, channel delivery -> target socket write', leg.targetWrite - leg.opened],
  ];
}

/** Splits each loaded round trip at its interactive message's points, both ways. */
function analyseLoaded(
  events: readonly Event[],
  raws: readonly LoadedRaw[],
  echoPort: number,
  untraced: readonly LoadedRaw[],
): LoadedResult {
  const timeline = (role: Role): Timeline => new Timeline(events.filter((e) => e.role === role));
  const svc = timeline('service-proxy');
  const hub = timeline('hub');
  const dev = timeline('device-proxy');
  const devChans = dev.events.filter((e) => e.point === 'chan' && e.args[1]?.endsWith(`:${echoPort}`) === true);
  const per: bigint[][] = [];
  const rtts: number[] = [];
  const ahead = { toDevice: [] as number[], toService: [] as number[] };
  const kernelAhead: number[][] = [[], [], [], []];
  let names: Array<[string, string]> = [];
  const windows = raws.flatMap((raw) => {
    // Each round has its own tunnel and client connection; windows never overlap, so one timeline per role serves all.
    const svcTag = `${raw.svcPort}:${raw.clientPort}`;
    const svcChan = svc.events.filter((e) => e.point === 'chan' && e.args[1] === svcTag && e.t <= (raw.windows[0]?.[0] ?? 0n)).at(-1)
      ?.args[0];
    return svcChan === undefined ? [] : raw.windows.map(([t0, t1]) => ({ t0, t1, svcTag, svcChan }));
  });
  for (const { t0, t1, svcTag, svcChan } of windows) {
    const out = matchDevice(devChans, (devTag, devChan) => {
      const fwd = matchLeg(svc, hub, dev, t0, t1, svcTag, svcChan, devTag, 'device');
      if (fwd === undefined) return undefined;
      const back = matchLeg(dev, hub, svc, fwd.targetWrite, t1, devTag, devChan, svcTag, 'service');
      return back === undefined ? undefined : { fwd, back };
    });
    if (out === undefined) continue;
    const { fwd, back } = out;
    const rows: Array<[string, string, bigint]> = [
      ['kernel', 'bench client write -> service proxy socket read (wake-up of a proxy busy with the bulk)', fwd.read - t0],
      ...legRows(fwd, 'service proxy', 'device proxy'),
      ['kernel + echo', 'device proxy target write -> echo server -> device proxy target read', back.read - fwd.targetWrite],
      ...legRows(back, 'device proxy', 'service proxy'),
      ['kernel', 'service proxy socket write -> bench client read', t1 - back.targetWrite],
    ];
    names = rows.map(([w, what]) => [w, what]);
    rows.forEach(([, , ns], i) => {
      (per[i] ??= []).push(ns);
    });
    ahead.toDevice.push(fwd.queuedAhead);
    ahead.toService.push(back.queuedAhead);
    [fwd.kernelAheadToHub, fwd.kernelAheadToReceiver, back.kernelAheadToHub, back.kernelAheadToReceiver].forEach((b, i) => {
      if (Number.isFinite(b)) (kernelAhead[i] as number[]).push(b);
    });
    rtts.push(Number(t1 - t0) / 1000);
  }
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const us = (xs: bigint[]): number[] => xs.map((x) => Number(x) / 1000);
  const loopUs = (raw: LoadedRaw): number[] => raw.windows.map(([a, b]) => Number(b - a) / 1000);
  const untracedUs = untraced.flatMap(loopUs);
  const rates = (rs: readonly LoadedRaw[]): number | undefined => {
    const got = rs.flatMap((r) => (r.bulkMBps === undefined ? [] : [r.bulkMBps]));
    return got.length > 0 ? median(got) : undefined;
  };
  return {
    rows: names.map(([where, what], i) => ({ where, what, meanUs: mean(us(per[i] ?? [])), p50Us: median(us(per[i] ?? [])) })),
    matched: rtts.length,
    samples: raws.reduce((n, r) => n + r.windows.length, 0),
    measuredMeanUs: mean(rtts),
    measuredP50Us: median(rtts),
    allMeanUs: mean(raws.flatMap(loopUs)),
    untracedMeanUs: untracedUs.length > 0 ? mean(untracedUs) : undefined,
    untracedP50Us: untracedUs.length > 0 ? median(untracedUs) : undefined,
    queuedAheadBytes: { toDevice: mean(ahead.toDevice), toService: mean(ahead.toService) },
    kernelAheadBytes: kernelAhead.map(mean),
    bulkMBps: rates(raws),
    untracedBulkMBps: rates(untraced),
    roundDiffs: raws.flatMap((r, i) => {
      const u = untraced[i];
      return u === undefined || u.windows.length === 0 || r.windows.length === 0 ? [] : [mean(loopUs(r)) / mean(loopUs(u)) - 1];
    }),
  };
}

/** Tries each of the device proxy's channels to the echo target (normally one) until one matches. */
function matchDevice<T>(chans: readonly Event[], f: (devTag: string, devChan: string) => T | undefined): T | undefined {
  for (const c of chans) {
    const got = f(c.args[1] as string, c.args[0] as string);
    if (got !== undefined) return got;
  }
  return undefined;
}

function readTraces(dir: string): Event[] {
  const out: Event[] = [];
  for (const f of fs.readdirSync(dir).filter((x) => x.endsWith('.trace'))) {
    const lines = fs.readFileSync(path.join(dir, f), 'utf8').split('\n');
    const cmd = (lines[0] ?? '').replace(/^# /, '').trim();
    const role: Role | undefined =
      cmd === 'hub' ? 'hub' : cmd === 'device-proxy' ? 'device-proxy' : cmd === 'service-proxy' ? 'service-proxy' : undefined;
    if (role === undefined) continue;
    for (const l of lines.slice(1)) {
      if (l === '' || l.startsWith('#')) continue;
      const [t, point, ...args] = l.split(' ');
      if (t === undefined || point === undefined) continue;
      out.push({ t: BigInt(t), role, point, args, ...(args[0] !== undefined ? { tag: args[0] } : {}) });
    }
  }
  return out.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
}

/** The first event of each expected point, in order, inside [t0, t1]; undefined if one is missing. */
function matchSequence(events: readonly Event[], from: number, t0: bigint, t1: bigint): bigint[] | undefined {
  const times: bigint[] = [t0];
  let i = from;
  let last = t0;
  for (const hop of SEQUENCE.slice(1, -1)) {
    while (
      i < events.length &&
      (events[i] as Event).t <= t1 &&
      !((events[i] as Event).t >= last && (events[i] as Event).role === hop.role && (events[i] as Event).point === hop.point)
    )
      i++;
    if (i >= events.length || (events[i] as Event).t > t1) return undefined;
    last = (events[i] as Event).t;
    times.push(last);
    i++;
  }
  times.push(t1);
  return times;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? NaN;
/** Nearest-rank quantile (q in 0..1). */
const quantile = (xs: number[], q: number): number => [...xs].sort((a, b) => a - b)[Math.max(0, Math.ceil(q * xs.length) - 1)] ?? NaN;

interface TraceClient {
  readonly localPort: number;
  roundTrip(): Promise<[bigint, bigint]>;
  close(): void;
}

async function echoClient(port: number): Promise<TraceClient> {
  const sock = await new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port, noDelay: true }, () => resolve(s));
    s.once('error', reject);
  });
  const payload = Buffer.alloc(RTT_PAYLOAD_BYTES, 0x61);
  let waiting: { got: number; resolve: (t: bigint) => void } | undefined;
  sock.on('data', (d: Buffer) => {
    const t = process.hrtime.bigint();
    if (waiting === undefined) return;
    waiting.got += d.length;
    if (waiting.got >= payload.length) {
      const w = waiting;
      waiting = undefined;
      w.resolve(t);
    }
  });
  return {
    localPort: sock.localPort ?? 0,
    roundTrip: async () => {
      const done = new Promise<bigint>((resolve) => {
        waiting = { got: 0, resolve };
      });
      const t0 = process.hrtime.bigint();
      sock.write(payload);
      return [t0, await done];
    },
    close: () => sock.destroy(),
  };
}

/** Back-to-back round trips through a tunnel; with `env` tracing it, without it the same loop untraced. */
async function loop<T>(
  targets: TargetPorts,
  tmp: string,
  progress: (d: string) => void,
  warmup: number,
  samples: number,
  env: Record<string, string>,
  then: (running: RunningPath, client: TraceClient) => Promise<T>,
): Promise<{ windows: Array<[bigint, bigint]>; then: T }> {
  const running = await devstreamsPath.start({
    targets,
    placement: findPlacement('loopback') as Placement,
    tmpDir: tmp,
    log: progress,
    env,
  });
  try {
    const client = await echoClient(running.ports.echo);
    try {
      for (let i = 0; i < warmup; i++) await client.roundTrip();
      const windows: Array<[bigint, bigint]> = [];
      for (let i = 0; i < samples; i++) windows.push(await client.roundTrip());
      // biome-ignore lint/suspicious/noThenProperty: a measured value, not a function, so never a thenable
      return { windows, then: await then(running, client) };
    } finally {
      client.close();
    }
  } finally {
    await running.stop();
  }
}

async function collectTrace(quick: boolean, progress: (d: string) => void): Promise<TraceResult> {
  const budget = quick ? TRACE_BUDGET.quick : TRACE_BUDGET.full;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'devstreams-trace-'));
  const traceDir = path.join(tmp, 'trace');
  fs.mkdirSync(traceDir);
  const children: Child[] = [];
  try {
    const t = await spawnNodeReady<{ ports: Partial<TargetPorts> }>(benchScript('procs/targets-main.js'), ['sink,echo,http']);
    children.push(t.child);
    let iperfPort: number | undefined;
    if ((await iperf3Unavailable()) === undefined) {
      const srv = await startIperf3Server();
      children.push(srv.child);
      iperfPort = srv.port;
    }
    const targets = { ...t.ready.ports, iperf: iperfPort ?? 1 } as TargetPorts;
    const bulk = async (running: RunningPath, client: TraceClient): Promise<LoadedRaw | undefined> =>
      iperfPort === undefined ? undefined : underBulk(running, client, budget.loaded, progress);
    const plain: Array<Awaited<ReturnType<typeof loop<LoadedRaw | undefined>>>> = [];
    const traced: typeof plain = [];
    for (let r = 0; r < budget.rounds; r++) {
      progress(`round ${r + 1} of ${budget.rounds}: ${budget.samples} round trips untraced, then traced`);
      plain.push(await loop(targets, tmp, progress, budget.warmup, budget.samples, {}, bulk));
      traced.push(await loop(targets, tmp, progress, budget.warmup, budget.samples, { [TRACE_ENV]: traceDir }, bulk));
    }
    const windows = traced.flatMap((x) => x.windows);
    await new Promise((r) => setTimeout(r, 3 * TRACE_FLUSH_MS));
    const events = readTraces(traceDir);
    const perHop: number[][] = HOPS.map(() => []);
    const rtts: number[] = [];
    const cut = quantile(
      windows.map(([a, b]) => Number(b - a) / 1000),
      TRACE_KEEP_QUANTILE,
    );
    let from = 0;
    for (const [t0, t1] of windows) {
      while (from < events.length && (events[from] as Event).t < t0) from++;
      if (Number(t1 - t0) / 1000 > cut) continue;
      const times = matchSequence(events, from, t0, t1);
      if (times === undefined) continue;
      for (let h = 0; h < HOPS.length; h++) (perHop[h] as number[]).push(Number((times[h + 1] as bigint) - (times[h] as bigint)) / 1000);
      rtts.push(Number(t1 - t0) / 1000);
    }
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    // Both loops trimmed alike: round trips up to the loop's own quantile.
    const trimmed = (ws: ReadonlyArray<[bigint, bigint]>): number[] => {
      const us = ws.map(([a, b]) => Number(b - a) / 1000);
      const keep = quantile(us, TRACE_KEEP_QUANTILE);
      return us.filter((x) => x <= keep);
    };
    const plainUs = trimmed(plain.flatMap((x) => x.windows));
    const loadedPlain = plain.flatMap((x) => (x.then === undefined ? [] : [x.then]));
    const loadedTraced = traced.flatMap((x) => (x.then === undefined ? [] : [x.then]));
    return {
      rows: HOPS.map(([where, what], h) => ({ where, what, meanUs: mean(perHop[h] as number[]), p50Us: median(perHop[h] as number[]) })),
      matched: rtts.length,
      samples: windows.length,
      measuredMeanUs: mean(rtts),
      measuredP50Us: median(rtts),
      untracedMeanUs: mean(plainUs),
      untracedP50Us: median(plainUs),
      roundDiffs: traced.map((x, r) => mean(trimmed(x.windows)) / mean(trimmed((plain[r] as (typeof plain)[number]).windows)) - 1),
      ...(loadedTraced.length === 0 ? {} : { loaded: analyseLoaded(events, loadedTraced, targets.echo, loadedPlain) }),
    };
  } finally {
    for (const c of children) await c.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/** "over N paired rounds ...: median +x % (range a to b)", and whether the median's size is within the tolerance. */
function pairedRounds(diffs: readonly number[]): { text: string; within: boolean } {
  const pct = (x: number): string => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
  const mid = median([...diffs]);
  const range = diffs.length > 1 ? ` (rounds ${pct(Math.min(...diffs))} to ${pct(Math.max(...diffs))})` : '';
  return {
    text: `traced against untraced over ${diffs.length} paired round${diffs.length === 1 ? '' : 's'} (an untraced tunnel, then a traced one): median ${pct(mid)}${range}`,
    within: Math.abs(mid) <= TRACE_SUM_TOLERANCE,
  };
}

function renderTrace(data: unknown, results: Parameters<Parameters<typeof registerModule>[0]['render']>[1]): string | undefined {
  const d = data as TraceResult & { error?: string };
  if (d.error !== undefined) return `not measured: ${d.error}`;
  if (d.matched === 0) return `not measured: none of ${d.samples} traced round trips had every point (is tracing in the build?)`;
  const f = (v: number): string => (Number.isFinite(v) ? v.toFixed(1) : '-');
  const sum = d.rows.reduce((s, r) => s + r.meanUs, 0);
  // The check that matters: the traced round trip against the same loop through an untraced tunnel.
  const off = Math.abs(sum - d.untracedMeanUs) / d.untracedMeanUs;
  const paired = pairedRounds(d.roundDiffs);
  const untraced = metric(results, 'rtt', 'devstreams', 'loopback', 'p50_us');
  const lines = [
    `One ${RTT_PAYLOAD_BYTES}-byte round trip (back to back, no other traffic) through the tunnel on loopback, split at the points each process stamps when ` +
      `\`${TRACE_ENV}\` is set (\`src/util/trace.ts\`; off by default, one comparison per point when off). All processes read the ` +
      `same monotonic clock. ${d.matched} of ${d.samples} traced round trips had every point and were no slower than the loop's ` +
      `p${TRACE_KEEP_QUANTILE * 100} (the slowest are scheduling stalls; the untraced loop is trimmed alike); rows are means over them (so they add ` +
      'up) with the median beside. "kernel" rows are socket write to socket read between two processes: the loopback TCP path ' +
      "and the reader's wake-up (its event loop's latency).",
    '',
    '| # | where | what | mean us | p50 us |',
    '| --- | --- | --- | --- | --- |',
    ...d.rows.map((r, i) => `| ${i + 1} | ${r.where} | ${r.what} | ${f(r.meanUs)} | ${f(r.p50Us)} |`),
    `|  | **sum** |  | **${f(sum)}** |  |`,
    '',
    `Sum of the rows ${f(sum)} us (= the traced round trips' mean at the client, ${f(d.measuredMeanUs)} us; p50 ${f(d.measuredP50Us)} us) against the same ` +
      `back-to-back loop through a tunnel started without tracing: mean ${f(d.untracedMeanUs)} us, p50 ${f(d.untracedP50Us)} us ` +
      `(${(off * 100).toFixed(1)} % apart pooled; ${paired.text}: ${paired.within ? 'within' : '**not within**'} ${TRACE_SUM_TOLERANCE * 100} %; ` +
      "the difference is the trace's own cost plus noise)." +
      (untraced !== undefined ? ` The untraced \`rtt\` scenario's p50 through the tunnel in this run: ${f(untraced)} us.` : ''),
    '',
    'Per process (sum of its rows): ' +
      ['service proxy', 'hub', 'device proxy', 'kernel', 'kernel + echo']
        .map((w) => `${w} ${f(d.rows.filter((r) => r.where === w).reduce((s, r) => s + r.meanUs, 0))} us`)
        .join(', ') +
      '.',
  ];
  return [...lines, '', renderLoaded(d.loaded)].join('\n');
}

function renderLoaded(l: LoadedResult | undefined): string {
  const head = '### Under bulk: where the interactive round trip waits\n\n';
  if (l === undefined) return `${head}not measured: iperf3 not installed.`;
  if (l.matched === 0) return `${head}not measured: none of ${l.samples} loaded round trips had every point.`;
  const f = (v: number): string => (Number.isFinite(v) ? v.toFixed(0) : '-');
  const mbps = (v: number | undefined): string => (v !== undefined ? `${v.toFixed(0)} MB/s` : 'a rate not read');
  const sum = l.rows.reduce((s, r) => s + r.meanUs, 0);
  const rows = l.rows.map((r, i) => `| ${i + 1} | ${r.where} | ${r.what} | ${f(r.meanUs)} | ${f(r.p50Us)} |`);
  const off = (ref: number): string => `${((Math.abs(sum - ref) / ref) * 100).toFixed(1)} % apart`;
  const within = (ref: number): string => (Math.abs(sum - ref) / ref <= TRACE_SUM_TOLERANCE ? 'within' : '**not within**');
  const total = (pick: (r: TraceHopRow) => boolean): string => f(l.rows.filter(pick).reduce((s, r) => s + r.meanUs, 0));
  const isQueue = (r: TraceHopRow): boolean => /mux queue|socket buffer/.test(r.what);
  // The four socket hops between tunnel processes, in round-trip order (kernelAheadBytes follows it).
  const kernel = l.rows.filter((r) => r.where === 'kernel' && r.what.includes('hub'));
  const kB = (b: number | undefined): string => (b !== undefined && Number.isFinite(b) ? `${(b / 1e3).toFixed(0)} kB` : '-');
  return (
    head +
    `The interactive connection's ${RTT_PAYLOAD_BYTES}-byte round trips (one every ${TRACE_LOADED_GAP_MS} ms) while iperf3 saturates the same stream ` +
    `(${mbps(l.bulkMBps)}), split at every queue the message waits in, both ways. ` +
    "The proxies stamp the interactive connection's socket points (tagged by port) and the mux stamps the channel whose bytes it takes into a " +
    'batch; the batch is sealed and handed to the websocket in the same call, and the websocket message number is counted alike by the ' +
    'sending proxy, the hub (frames it passes on) and the receiving proxy, so the record that carries the interactive bytes is followed ' +
    `through all three processes, bulk records around it. ${l.matched} of ${l.samples} round trips had every point; rows are means over them ` +
    "(so they add up), median beside; no round trip is dropped. The mux queue is split by what held it: the resumable layer's hold " +
    '(its in-flight bound reached, or the connection below past its high-water mark) from its `rs.hold` to its `rs.go`, and the rest. ' +
    '"kernel" rows are measured, not estimated: from the moment the sending process\'s socket buffer handed the record\'s last byte to the ' +
    "kernel (Node's write callback, or at once when the write went straight through) to the next process's read of the chunk holding that byte: " +
    "the kernel's send and receive queues plus the reader's wake-up (Node has no SO_TIMESTAMPING to split the two).\n\n" +
    '| # | where | what | mean us | p50 us |\n| --- | --- | --- | --- | --- |\n' +
    `${rows.join('\n')}\n|  | **sum** |  | **${f(sum)}** |  |\n\n` +
    `Sum of the rows ${f(sum)} us = the matched round trips' mean at the client (p50 ${f(l.measuredP50Us)} us). Against every traced loaded ` +
    `round trip, matched or not (mean ${f(l.allMeanUs)} us): ${within(l.allMeanUs)} ${TRACE_SUM_TOLERANCE * 100} %, ${off(l.allMeanUs)}. ` +
    (l.untracedMeanUs !== undefined
      ? `Against the same loaded loop through a tunnel started without tracing (mean ${f(l.untracedMeanUs)} us, p50 ${f(l.untracedP50Us ?? Number.NaN)} us, ` +
        `${mbps(l.untracedBulkMBps)} of bulk beside it): ${off(l.untracedMeanUs)} pooled; ${pairedRounds(l.roundDiffs).text}: ` +
        `${pairedRounds(l.roundDiffs).within ? 'within' : '**not within**'} ${TRACE_SUM_TOLERANCE * 100} % ` +
        "(the trace's cost under bulk, a few stamps per 64 KiB record in every process, plus the swing of a loaded round trip from one tunnel to the next)."
      : 'The untraced loaded loop did not run.') +
    '\n\n' +
    `In user-space queues (mux and socket buffers, both proxies and the hub): ${total(isQueue)} us; kernel queues and wake-ups: ` +
    `${total((r) => r.where === 'kernel')} us; the rest (sealing, opening, splicing, delivery, echo): ${total((r) => !isQueue(r) && r.where !== 'kernel')} us. ` +
    `Bytes already in the sending proxy's websocket socket buffer when the record was handed to it: ${f(l.queuedAheadBytes.toDevice)} ` +
    `(service proxy, towards the device) and ${f(l.queuedAheadBytes.toService)} (device proxy, back). ` +
    "Bytes of earlier records in the kernel's queues ahead of it when it reached the kernel (sent by the writer, not yet read by the next " +
    'process, from the stamps: a measured `SIOCOUTQ` + `SIOCINQ` for this record), mean over the kernel rows in order: ' +
    `${kernel.map((r, i) => `row ${l.rows.indexOf(r) + 1} ${kB(l.kernelAheadBytes[i])}`).join(', ')}` +
    (l.bulkMBps !== undefined
      ? `; at the bulk's ${mbps(l.bulkMBps)} those bytes drain in ${kernel.map((_, i) => `${f((l.kernelAheadBytes[i] ?? Number.NaN) / (l.bulkMBps as number))} us`).join(', ')}: ` +
        'where that is close to the row, the row is queueing; the rest is wake-up.'
      : '.')
  );
}

registerModule({
  id: 'trace',
  title: 'Where the round trip goes',
  order: 20,
  collect: (ctx) => collectTrace(ctx.quick, ctx.progress),
  render: renderTrace,
});
