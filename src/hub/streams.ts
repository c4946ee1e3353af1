/**
 * The streaming endpoint's pairing: each side arrives with its single-use token (checked before
 * the upgrade, in server.ts) and its handshake already answered; the first side waits for the
 * second; when both are here a `Splice` joins them. What a side sends while waiting is read and
 * held (bounded by the relay high-water mark, then the side is paused) and relayed first. An
 * unpaired side is closed after the pair timeout.
 */
import type { Socket } from 'node:net';
import type { StreamSide } from './presence.js';
import { CLOSE_ANSWER_MS, Splice, type RelayStats, type SpliceLimits } from './splice.js';
import { closeFrame } from '../transport/ws-frame.js';
import { CLOSE_CODES } from '../hub-api/control-protocol.js';
import type { HubLogger } from './log.js';

interface Waiting {
  /** When this side arrived (performance.now()). */
  since: number;
  side: StreamSide;
  socket: Socket;
  early: Buffer[];
  earlyBytes: number;
  timer: NodeJS.Timeout;
  gone: boolean;
  onData: (chunk: Buffer) => void;
  onGone: () => void;
}

/** Timeout, relay limits and the counters the pairer reports to. */
export interface StreamPairerOptions {
  pairTimeoutMs: number;
  limits: SpliceLimits;
  onBytes: (n: number) => void;
  /** Told how long a stream's first side waited for the second, ms (a metric). */
  onPaired?: (waitMs: number) => void;
  log: HubLogger;
}

/** Closes a stream socket that never got paired: a close frame with the reason, then FIN. */
function refuse(socket: Socket, code: number, reason: string): void {
  if (socket.destroyed) return;
  socket.end(closeFrame(code, reason));
  // A peer that never reads must not hold the socket open.
  setTimeout(() => socket.destroy(), CLOSE_ANSWER_MS).unref();
}

/** Meets a stream's two sides at the streaming endpoint and splices them (see the module comment). */
export class StreamPairer {
  private readonly waiting = new Map<string, Waiting>();
  private readonly splices = new Map<string, Splice>();

  constructor(private readonly o: StreamPairerOptions) {}

  get activeCount(): number {
    return this.splices.size;
  }

  get waitingCount(): number {
    return this.waiting.size;
  }

  /** Relay statistics of a paired stream, or undefined. */
  stats(streamId: string): RelayStats | undefined {
    return this.splices.get(streamId)?.stats();
  }

  /**
   * Takes a stream socket for `side` of `streamId` whose 101 response has been written; `head`
   * holds bytes that arrived with the upgrade request.
   */
  add(streamId: string, side: StreamSide, socket: Socket, head: Buffer): void {
    socket.setNoDelay(true);
    socket.setTimeout(0);
    const other = this.waiting.get(streamId);
    if (!other) {
      this.wait(streamId, side, socket, head);
      return;
    }
    this.waiting.delete(streamId);
    clearTimeout(other.timer);
    other.socket.off('data', other.onData);
    other.socket.off('end', other.onGone);
    other.socket.off('close', other.onGone);
    other.socket.pause();
    if (other.gone || other.side === side) {
      // The partner already left (or a token bug gave us the same side twice): nothing to pair with.
      refuse(socket, CLOSE_CODES.peerGone, 'ERR_STREAM_PEER_CLOSED');
      if (!other.gone) refuse(other.socket, CLOSE_CODES.peerGone, 'ERR_STREAM_PEER_CLOSED');
      return;
    }
    const mine = head.length > 0 ? [head] : [];
    const early = side === 'device' ? { device: mine, service: other.early } : { device: other.early, service: mine };
    const device = side === 'device' ? socket : other.socket;
    const service = side === 'device' ? other.socket : socket;
    const splice = new Splice(streamId, device, service, this.o.limits, (s, reason) => this.ended(s, reason), this.o.onBytes);
    this.splices.set(streamId, splice);
    this.o.log.info({ streamId }, 'stream paired');
    this.o.onPaired?.(performance.now() - other.since);
    splice.start(early); // registered first: early data may end it at once
  }

  private wait(streamId: string, side: StreamSide, socket: Socket, head: Buffer): void {
    const w: Waiting = {
      since: performance.now(),
      side,
      socket,
      early: head.length > 0 ? [head] : [],
      earlyBytes: head.length,
      gone: false,
      timer: setTimeout(() => {
        if (this.waiting.get(streamId) === w) this.waiting.delete(streamId);
        refuse(socket, CLOSE_CODES.pairTimeout, 'ERR_STREAM_PAIR_TIMEOUT');
      }, this.o.pairTimeoutMs),
      onData: (chunk) => {
        w.early.push(chunk);
        w.earlyBytes += chunk.length;
        // Stop reading a side that talks too much before its partner arrives.
        if (w.earlyBytes > this.o.limits.highWater) socket.pause();
      },
      onGone: () => {
        // A side that hangs up before its partner came is done: its half-open socket (server
        // sockets allow half-open) would otherwise stay until the pair timeout, or for good once
        // the partner arrived and was refused. The entry stays, so the partner hears why.
        w.gone = true;
        socket.destroy();
      },
    };
    w.timer.unref();
    socket.on('data', w.onData);
    socket.on('end', w.onGone);
    socket.on('close', w.onGone);
    socket.on('error', () => {});
    this.waiting.set(streamId, w);
  }

  private ended(splice: Splice, reason: string): void {
    this.splices.delete(splice.streamId);
    this.o.log.info({ streamId: splice.streamId, reason, bytes: splice.bytes }, 'stream ended');
  }

  /** Closes everything (hub shutdown). */
  close(): void {
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      refuse(w.socket, CLOSE_CODES.shutdown, 'ERR_HUB_SHUTDOWN');
    }
    this.waiting.clear();
    for (const s of [...this.splices.values()]) s.close(CLOSE_CODES.shutdown, 'ERR_HUB_SHUTDOWN');
  }
}
