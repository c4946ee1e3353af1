/**
 * Splices two paired WebSockets: every message from one side goes to the other unchanged, with
 * backpressure. When the bytes queued towards a side pass the high-water mark, the hub stops
 * reading the other side (`ws.pause()`, so TCP pushes back on the sender) and resumes once the
 * queue falls to the low-water mark. In steady state a message costs one `send` and one
 * `bufferedAmount` read: send callbacks are attached only to messages sent once the mark is
 * passed, which is when we need to hear that the queue drained. Hub memory per stream is thus about two high-water marks plus
 * a few messages in flight, whatever the peers do.
 */
import WebSocket from 'ws';

export interface RelayLimits {
  highWater: number;
  lowWater: number;
}

/** Counters for one direction. */
interface Direction {
  paused: boolean;
  /** Largest `bufferedAmount` seen towards the destination, for tests and diagnostics. */
  maxBuffered: number;
}

export interface RelayStats {
  /** Bytes queued at the hub towards the device and the service now. */
  bufferedToDevice: number;
  bufferedToService: number;
  /** High-water marks observed since pairing. */
  maxBufferedToDevice: number;
  maxBufferedToService: number;
  bytesRelayed: number;
}

const BINARY = { binary: true } as const;
const TEXT = { binary: false } as const;

/** A live pair of sockets; built by the streaming endpoint once both sides arrived. */
export class Relay {
  bytes = 0;
  private readonly toService: Direction = { paused: false, maxBuffered: 0 };
  private readonly toDevice: Direction = { paused: false, maxBuffered: 0 };
  private ended = false;

  constructor(
    readonly streamId: string,
    private readonly device: WebSocket,
    private readonly service: WebSocket,
    private readonly limits: RelayLimits,
    private readonly onEnd: (relay: Relay, reason: string) => void,
    private readonly onBytes: (n: number) => void,
  ) {
    this.wire(device, service, this.toService, 'device');
    this.wire(service, device, this.toDevice, 'service');
  }

  private wire(src: WebSocket, dst: WebSocket, dir: Direction, srcName: string): void {
    const { highWater, lowWater } = this.limits;
    const onSent = (): void => {
      if (dir.paused && dst.bufferedAmount <= lowWater) {
        dir.paused = false;
        src.resume();
      }
    };
    src.on('message', (data: Buffer, isBinary: boolean) => {
      if (dst.readyState !== WebSocket.OPEN) return;
      const n = data.length;
      this.bytes += n;
      this.onBytes(n);
      const queued = dst.bufferedAmount + n;
      if (queued > dir.maxBuffered) dir.maxBuffered = queued;
      if (dir.paused) {
        dst.send(data, isBinary ? BINARY : TEXT, onSent);
      } else if (queued > highWater) {
        // This message takes the queue over the mark: stop reading the source, and hear when
        // the queue has been written through this message's callback.
        dir.paused = true;
        src.pause();
        dst.send(data, isBinary ? BINARY : TEXT, onSent);
      } else {
        dst.send(data, isBinary ? BINARY : TEXT);
      }
    });
    src.on('close', (code: number, reason: Buffer) => {
      this.end(`${srcName} closed (${code}${reason.length ? ` ${reason.toString()}` : ''})`, dst, code);
    });
    src.on('error', () => {
      this.end(`${srcName} failed`, dst, 1011);
    });
  }

  private end(reason: string, other: WebSocket, code: number): void {
    if (this.ended) {
      return;
    }
    this.ended = true;
    const forward = code === 1000 ? 1000 : 1001;
    if (other.readyState === WebSocket.OPEN || other.readyState === WebSocket.CONNECTING) {
      other.close(forward, `peer ${reason}`.slice(0, 120));
      // A peer that never answers the close handshake is cut off.
      const t = setTimeout(() => other.terminate(), 5000);
      t.unref();
      other.once('close', () => clearTimeout(t));
    }
    this.onEnd(this, reason);
  }

  /** Closes both sides (hub shutdown). */
  close(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.device.close(code, reason);
    this.service.close(code, reason);
    this.onEnd(this, reason);
  }

  stats(): RelayStats {
    return {
      bufferedToDevice: this.device.bufferedAmount,
      bufferedToService: this.service.bufferedAmount,
      maxBufferedToDevice: this.toDevice.maxBuffered,
      maxBufferedToService: this.toService.maxBuffered,
      bytesRelayed: this.bytes,
    };
  }
}
