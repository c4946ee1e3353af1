// User-space link emulator: a TCP relay that adds one-way delay (with optional jitter), a bandwidth
// cap and a bounded queue in each direction, preserving byte order. With no delay and no cap it is
// a plain blind relay (socket.pipe both ways), used as the "hub" of the OpenSSH baseline.
//
// Model of one direction: a chunk that arrives at time t starts serializing when the link is free
// (txStart = max(t, previous txEnd)), takes len / bandwidth, then flies for the one-way delay plus a
// jitter sample; its delivery time is never earlier than the previous chunk's (order preserved).
// The queue holds at most bandwidth x (delay + jitter) + slack bytes: past that the source socket is
// paused, so a sender sees backpressure as from a real link whose bottleneck buffer is one BDP.
// Timers have about 1 ms granularity, so sub-millisecond delays come out near 1 ms.
import net from 'node:net';
import type { LegSpec } from './placements.js';

/** Bytes a delay line may queue beyond one bandwidth-delay product before pausing the source. */
export const LINK_QUEUE_SLACK_BYTES = 256 * 1024;
/** Queue bound of a delayed but uncapped leg (it has no bandwidth-delay product). */
export const LINK_UNCAPPED_QUEUE_BYTES = 16 * 1024 * 1024;

/** Legs traversed in series, folded into one: delays and jitters add, the narrowest cap wins. */
export function combineLegs(legs: readonly LegSpec[]): LegSpec {
  const caps = legs.map((l) => l.mbps).filter((m) => m > 0);
  return {
    oneWayMs: legs.reduce((s, l) => s + l.oneWayMs, 0),
    jitterMs: legs.reduce((s, l) => s + l.jitterMs, 0),
    mbps: caps.length === 0 ? 0 : Math.min(...caps),
  };
}

export function isPassThrough(l: LegSpec): boolean {
  return l.oneWayMs === 0 && l.jitterMs === 0 && l.mbps === 0;
}

interface Queued {
  readonly chunk: Buffer;
  readonly deliverAt: number;
}

/** One direction of a link: reads `src`, writes `dst` late and slow as the leg says. */
class DelayLine {
  private readonly queue: Queued[] = [];
  private head = 0;
  private queuedBytes = 0;
  private txFreeAt = 0;
  private lastDeliverAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private waitingDrain = false;
  private srcEnded = false;
  private readonly bytesPerMs: number;
  private readonly limit: number;

  constructor(
    private readonly src: net.Socket,
    private readonly dst: net.Socket,
    private readonly leg: LegSpec,
  ) {
    this.bytesPerMs = (leg.mbps * 1e6) / 8 / 1000;
    this.limit =
      leg.mbps > 0 ? Math.ceil(this.bytesPerMs * (leg.oneWayMs + leg.jitterMs)) + LINK_QUEUE_SLACK_BYTES : LINK_UNCAPPED_QUEUE_BYTES;
    src.on('data', (chunk: Buffer) => this.onData(chunk));
    src.on('end', () => {
      this.srcEnded = true;
      this.maybeEnd();
    });
    dst.on('drain', () => {
      this.waitingDrain = false;
      this.flush();
    });
  }

  private onData(chunk: Buffer): void {
    const now = performance.now();
    const txStart = Math.max(now, this.txFreeAt);
    const txEnd = this.bytesPerMs > 0 ? txStart + chunk.length / this.bytesPerMs : now;
    this.txFreeAt = txEnd;
    const jitter = this.leg.jitterMs > 0 ? Math.random() * this.leg.jitterMs : 0;
    const deliverAt = Math.max(txEnd + this.leg.oneWayMs + jitter, this.lastDeliverAt);
    this.lastDeliverAt = deliverAt;
    this.queue.push({ chunk, deliverAt });
    this.queuedBytes += chunk.length;
    if (this.queuedBytes > this.limit) this.src.pause();
    this.schedule();
  }

  private schedule(): void {
    if (this.timer !== undefined || this.waitingDrain) return;
    const next = this.queue[this.head];
    if (next === undefined) return;
    const wait = next.deliverAt - performance.now();
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.flush();
      },
      Math.max(0, wait),
    );
  }

  private flush(): void {
    const now = performance.now() + 0.25; // deliver what is due within the timer's granularity
    while (!this.waitingDrain) {
      const next = this.queue[this.head];
      if (next === undefined || next.deliverAt > now) break;
      this.queue[this.head] = undefined as unknown as Queued;
      this.head += 1;
      this.queuedBytes -= next.chunk.length;
      if (!this.dst.write(next.chunk)) this.waitingDrain = true;
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    // Resume above one BDP: the bytes in flight alone are one BDP, so a lower mark would let the
    // link run dry before the source refills it.
    if (this.queuedBytes <= this.limit - LINK_QUEUE_SLACK_BYTES / 2 && this.src.isPaused()) this.src.resume();
    this.maybeEnd();
    this.schedule();
  }

  private maybeEnd(): void {
    if (this.srcEnded && this.head >= this.queue.length && !this.dst.writableEnded) this.dst.end();
  }

  stop(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

export interface LinkEmulatorOptions {
  /** Where accepted connections are relayed to. */
  readonly targetHost: string;
  readonly targetPort: number;
  /** Leg applied client -> target and target -> client (symmetric). */
  readonly leg: LegSpec;
  /** Port to listen on; 0 = ephemeral. */
  readonly listenPort?: number;
  /** Address to listen on; default 127.0.0.1 (a lossy link's relays listen on its veth addresses). */
  readonly listenHost?: string;
}

/** A listening relay (127.0.0.1 unless listenHost says otherwise) that emulates one (possibly folded) link to a target. */
export class LinkEmulator {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly lines = new Set<DelayLine>();

  constructor(private readonly opts: LinkEmulatorOptions) {
    // allowHalfOpen: a FIN from one side is relayed as a FIN; the other direction keeps flowing.
    this.server = net.createServer({ noDelay: true, allowHalfOpen: true }, (client) => this.onConnection(client));
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.opts.listenPort ?? 0, this.opts.listenHost ?? '127.0.0.1', () => resolve());
    });
    const addr = this.server.address();
    if (addr === null || typeof addr === 'string') throw new Error('link emulator: no port');
    return addr.port;
  }

  private onConnection(client: net.Socket): void {
    const upstream = net.connect({ host: this.opts.targetHost, port: this.opts.targetPort, noDelay: true, allowHalfOpen: true });
    client.setNoDelay(true);
    this.sockets.add(client);
    this.sockets.add(upstream);
    const abort = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', abort);
    upstream.on('error', abort);
    // A socket that closes before its peer sent EOF was reset or destroyed: pass that on. One that
    // closes after a clean FIN both ways leaves the other to finish on its own.
    client.on('close', () => {
      this.sockets.delete(client);
      if (!client.readableEnded) upstream.destroy();
    });
    upstream.on('close', () => {
      this.sockets.delete(upstream);
      if (!upstream.readableEnded) client.destroy();
    });
    if (isPassThrough(this.opts.leg)) {
      client.pipe(upstream);
      upstream.pipe(client);
      return;
    }
    // Hold client bytes until the upstream connection exists and the emulated TCP handshake
    // (SYN out, SYN-ACK back: one round trip of the leg) is over, as a real connect would.
    client.pause();
    const handshakeMs = 2 * this.opts.leg.oneWayMs;
    upstream.once('connect', () =>
      setTimeout(() => {
        const a = new DelayLine(client, upstream, this.opts.leg);
        const b = new DelayLine(upstream, client, this.opts.leg);
        this.lines.add(a);
        this.lines.add(b);
        client.resume();
      }, handshakeMs),
    );
  }

  async close(): Promise<void> {
    for (const l of this.lines) l.stop();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
