/**
 * The streaming endpoint's pairing: each side arrives with its single-use token (checked before
 * the upgrade, in server.ts); the first side waits, paused, for the second; when both are here
 * a `Relay` splices them. Messages a side sends while waiting are held (bounded by the relay
 * high-water mark) and delivered first. An unpaired side is closed after the pair timeout.
 */
import WebSocket from 'ws';
import type { StreamSide } from './presence.js';
import { Relay, type RelayLimits, type RelayStats } from './relay.js';
import { CLOSE_CODES } from '../hub-api/control-protocol.js';

interface Waiting {
  side: StreamSide;
  ws: WebSocket;
  early: Buffer[];
  earlyBinary: boolean[];
  earlyBytes: number;
  timer: NodeJS.Timeout;
  gone: boolean;
  onMessage: (data: Buffer, isBinary: boolean) => void;
  onClose: () => void;
}

export interface StreamPairerOptions {
  pairTimeoutMs: number;
  limits: RelayLimits;
  onBytes: (n: number) => void;
  log: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
}

export class StreamPairer {
  private readonly waiting = new Map<string, Waiting>();
  private readonly relays = new Map<string, Relay>();

  constructor(private readonly o: StreamPairerOptions) {}

  get activeCount(): number {
    return this.relays.size;
  }

  get waitingCount(): number {
    return this.waiting.size;
  }

  /** Relay statistics of a paired stream, or undefined. */
  stats(streamId: string): RelayStats | undefined {
    return this.relays.get(streamId)?.stats();
  }

  /** Takes a freshly upgraded stream socket for `side` of `streamId`. */
  add(streamId: string, side: StreamSide, ws: WebSocket): void {
    const other = this.waiting.get(streamId);
    if (!other) {
      this.wait(streamId, side, ws);
      return;
    }
    this.waiting.delete(streamId);
    clearTimeout(other.timer);
    other.ws.off('message', other.onMessage);
    other.ws.off('close', other.onClose);
    if (other.gone || other.side === side) {
      // The partner already left (or a token bug gave us the same side twice): nothing to pair with.
      ws.close(CLOSE_CODES.peerGone, 'ERR_STREAM_PEER_CLOSED');
      if (!other.gone) other.ws.close(CLOSE_CODES.peerGone, 'ERR_STREAM_PEER_CLOSED');
      return;
    }
    const device = side === 'device' ? ws : other.ws;
    const service = side === 'device' ? other.ws : ws;
    const relay = new Relay(streamId, device, service, this.o.limits, (r, reason) => this.ended(r, reason), this.o.onBytes);
    this.relays.set(streamId, relay);
    // What the waiting side sent before its partner came goes first.
    for (let i = 0; i < other.early.length; i++) ws.send(other.early[i]!, { binary: other.earlyBinary[i]! });
    other.ws.resume();
    this.o.log('info', 'stream paired', { streamId });
  }

  private wait(streamId: string, side: StreamSide, ws: WebSocket): void {
    const w: Waiting = {
      side,
      ws,
      early: [],
      earlyBinary: [],
      earlyBytes: 0,
      gone: false,
      timer: setTimeout(() => {
        if (this.waiting.get(streamId) === w) this.waiting.delete(streamId);
        ws.close(CLOSE_CODES.pairTimeout, 'ERR_STREAM_PAIR_TIMEOUT');
      }, this.o.pairTimeoutMs),
      onMessage: (data, isBinary) => {
        w.early.push(data);
        w.earlyBinary.push(isBinary);
        w.earlyBytes += data.length;
        // Stop reading a side that talks too much before its partner arrives.
        if (w.earlyBytes > this.o.limits.highWater) ws.pause();
      },
      onClose: () => {
        w.gone = true;
      },
    };
    w.timer.unref();
    ws.on('message', w.onMessage);
    ws.on('close', w.onClose);
    ws.on('error', () => {});
    this.waiting.set(streamId, w);
  }

  private ended(relay: Relay, reason: string): void {
    this.relays.delete(relay.streamId);
    this.o.log('info', 'stream ended', { streamId: relay.streamId, reason, bytes: relay.bytes });
  }

  /** Closes everything (hub shutdown). */
  close(): void {
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.ws.close(CLOSE_CODES.shutdown, 'ERR_HUB_SHUTDOWN');
    }
    this.waiting.clear();
    for (const r of [...this.relays.values()]) r.close(CLOSE_CODES.shutdown, 'ERR_HUB_SHUTDOWN');
  }
}
