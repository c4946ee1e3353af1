/**
 * Splices the two WebSockets of a stream frame by frame. Each data frame a side sends is passed
 * on as it arrives: its header rewritten (client frames are masked, server frames are not) and
 * its payload forwarded as views of the socket's chunks, so the hub never reassembles, copies or
 * allocates a message. Pings are answered here; a close frame is answered and passed on with the
 * reason; a protocol violation closes both sides.
 *
 * Backpressure: when the bytes queued at the hub towards a side pass the high-water mark, the
 * hub stops reading the other side (TCP then pushes back on the sender) until that queue has
 * been written out. Hub memory per stream is thus about two high-water marks plus one socket
 * read per side, whatever the peers do.
 */
import type { Socket } from 'node:net';
import { ClientFrameReader, CLOSE, OPCODE, parseClosePayload, serverCloseFrame, serverFrameHeader, type FrameSink } from './ws-frame.js';

export interface SpliceLimits {
  highWater: number;
  /** Largest frame payload relayed. */
  maxFramePayload: number;
}

export interface RelayStats {
  /** Bytes queued at the hub towards the device and the service now. */
  bufferedToDevice: number;
  bufferedToService: number;
  /** Largest queues observed since pairing. */
  maxBufferedToDevice: number;
  maxBufferedToService: number;
  bytesRelayed: number;
}

/** How long a side that was sent a close frame may take to answer before it is cut off, ms. */
const CLOSE_ANSWER_MS = 5000;

type SideName = 'device' | 'service';

/** One socket of the pair: its reader, what was said about closing, its queue high mark. */
class Side {
  closeSent = false;
  closeReceived = false;
  ended = false;
  /** Reading is paused because the other side's queue is over the high-water mark. */
  blocked = false;
  maxBuffered = 0;
  reader!: ClientFrameReader;
  private closeTimer: NodeJS.Timeout | undefined;

  constructor(readonly name: SideName, readonly socket: Socket) {}

  /** Frames may still be written to this side. */
  get open(): boolean {
    return !this.closeSent && !this.ended && !this.socket.destroyed;
  }

  /** Sends a close frame (once) and ends the socket when the peer has answered, or after a while. */
  sendClose(code: number, reason: string): void {
    if (this.closeSent || this.ended || this.socket.destroyed) return;
    this.closeSent = true;
    this.socket.write(serverCloseFrame(code, reason));
    // Read again if backpressure had paused us: the answer to our close must get through.
    if (this.blocked) {
      this.blocked = false;
      this.socket.resume();
    }
    if (this.closeReceived) this.end();
    else {
      this.closeTimer = setTimeout(() => this.socket.destroy(), CLOSE_ANSWER_MS);
      this.closeTimer.unref();
    }
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.closeTimer);
    this.socket.end();
  }

  destroy(): void {
    this.ended = true;
    clearTimeout(this.closeTimer);
    this.socket.destroy();
  }
}

/** A live pair of stream sockets, built by the streaming endpoint once both sides arrived. */
export class Splice {
  bytes = 0;
  private finished = false;
  private readonly device: Side;
  private readonly service: Side;

  /**
   * @param early chunks each side sent before the pair was complete (read, not yet relayed)
   */
  constructor(
    readonly streamId: string,
    device: Socket,
    service: Socket,
    early: { device: Buffer[]; service: Buffer[] },
    private readonly limits: SpliceLimits,
    private readonly onEnd: (splice: Splice, reason: string) => void,
    private readonly onBytes: (n: number) => void,
  ) {
    this.device = new Side('device', device);
    this.service = new Side('service', service);
    this.wire(this.device, this.service);
    this.wire(this.service, this.device);
    for (const chunk of early.device) this.onChunk(this.device, this.service, chunk);
    for (const chunk of early.service) this.onChunk(this.service, this.device, chunk);
    // The waiting side was paused; both read now unless the early bytes already filled a queue.
    if (!this.device.blocked) device.resume();
    if (!this.service.blocked) service.resume();
  }

  private wire(src: Side, dst: Side): void {
    const sink: FrameSink = {
      dataHeader: (fin, opcode, length) => {
        if (dst.open) dst.socket.write(serverFrameHeader(fin, opcode, length));
      },
      dataPiece: (piece) => {
        if (!dst.open) return;
        this.bytes += piece.length;
        this.onBytes(piece.length);
        dst.socket.write(piece);
      },
      control: (opcode, payload) => this.onControl(src, dst, opcode, payload),
      violation: (code, message) => {
        // Failing the connection (RFC 6455 7.1.7): say why, then close without waiting.
        src.sendClose(code, message);
        src.end();
        this.finish(`${src.name} broke the protocol: ${message}`, dst, CLOSE.goingAway);
      },
    };
    src.reader = new ClientFrameReader(sink, this.limits.maxFramePayload);
    src.socket.on('data', (chunk: Buffer) => this.onChunk(src, dst, chunk));
    // TCP ended without a close handshake, or failed: the other side hears 1001.
    src.socket.on('end', () => {
      if (!src.closeReceived) this.finish(`${src.name} went away`, dst, CLOSE.goingAway);
      src.end();
    });
    src.socket.on('error', () => {
      src.destroy();
      this.finish(`${src.name} failed`, dst, CLOSE.goingAway);
    });
    src.socket.on('close', () => {
      src.ended = true;
      if (!src.closeReceived) this.finish(`${src.name} went away`, dst, CLOSE.goingAway);
    });
  }

  private onChunk(src: Side, dst: Side, chunk: Buffer): void {
    if (src.closeReceived) return; // nothing may follow a close frame
    const out = dst.socket;
    out.cork(); // header and payload pieces of this read leave in one writev
    src.reader.push(chunk);
    out.uncork();
    const queued = out.writableLength;
    if (queued > dst.maxBuffered) dst.maxBuffered = queued;
    if (queued > this.limits.highWater && !src.blocked) {
      src.blocked = true;
      src.socket.pause();
      out.once('drain', () => {
        src.blocked = false;
        if (!src.ended) src.socket.resume();
      });
    }
  }

  private onControl(src: Side, dst: Side, opcode: number, payload: Buffer): void {
    if (opcode === OPCODE.ping) {
      if (src.open) src.socket.write(Buffer.concat([serverFrameHeader(true, OPCODE.pong, payload.length), payload]));
      return;
    }
    if (opcode !== OPCODE.close) return; // pong: nothing to do
    src.closeReceived = true;
    const { code, reason } = parseClosePayload(payload);
    if (src.closeSent) src.end(); // it answered our close
    else src.sendClose(code === 1005 ? CLOSE.normal : code, '');
    this.finish(`${src.name} closed (${code}${reason ? ` ${reason}` : ''})`, dst, code === CLOSE.normal || code === 1005 ? CLOSE.normal : CLOSE.goingAway);
  }

  /** The stream is over: tell the other side why (once). */
  private finish(reason: string, other: Side, code: number): void {
    if (this.finished) return;
    this.finished = true;
    other.sendClose(code, `peer ${reason}`);
    this.onEnd(this, reason);
  }

  /** Closes both sides (hub shutdown). */
  close(code: number, reason: string): void {
    if (this.finished) return;
    this.finished = true;
    this.device.sendClose(code, reason);
    this.service.sendClose(code, reason);
    this.onEnd(this, reason);
  }

  stats(): RelayStats {
    return {
      bufferedToDevice: this.device.socket.writableLength,
      bufferedToService: this.service.socket.writableLength,
      maxBufferedToDevice: this.device.maxBuffered,
      maxBufferedToService: this.service.maxBuffered,
      bytesRelayed: this.bytes,
    };
  }
}
