/**
 * Splices the two WebSockets of a stream frame by frame. Each data frame a side sends is passed
 * on as it arrives: its header rewritten (client frames are masked, server frames are not) and
 * its payload forwarded as views of the socket's reads (a small read, into the shared buffer, is
 * copied once, whole), so the hub never reassembles a large message. A read that is exactly one
 * whole data frame (the usual small message) goes on as one write of that read, its header
 * rewritten in place (passWhole). Pings are answered here; a close
 * frame is answered and passed on with the reason; a protocol violation closes both sides.
 *
 * Backpressure: when the bytes queued at the hub towards a side pass the high-water mark, the
 * hub stops reading the other side (TCP then pushes back on the sender) until that queue has
 * been written out; pongs are not queued towards a side that is not reading. What one socket
 * read produces leaves as a few writes (small pieces are joined), so the queue's bookkeeping
 * stays proportional to its bytes. Hub memory per stream is thus about two high-water marks
 * plus one socket read per side, whatever the peers do.
 */
import type { Socket } from 'node:net';
import { coalesceSmall } from '../util/coalesce.js';
import { ownReadsToKeep } from '../util/owned-reads.js';
import {
  FrameReader,
  asServerFrame,
  CLOSE,
  closeFrame,
  controlFrame,
  frameHeader,
  isValidCloseCode,
  OPCODE,
  parseClosePayload,
  type FrameSink,
} from '../transport/ws-frame.js';
import { trace, traceWritten } from '../util/trace.js';

/** Bounds of one splice; `highWater` is the bytes queued towards a side before its peer is paused. */
export interface SpliceLimits {
  highWater: number;
  /** Largest frame payload relayed. */
  maxFramePayload: number;
  /** Bytes a plain-TCP side reads at most at once (ownReadsToKeep); 0 reads the ordinary way. */
  readBytes: number;
  /** A side that streamed gives its fresh read buffer back after reading nothing for this long (ms); 0 never. */
  idleReadBufferMs: number;
  /** Bytes a plain-TCP side delivers in one readiness before it reads again at the end of the turn (read-turn.ts); 0 no bound. */
  turnReadBytes: number;
}

/** One spliced stream's queues at the hub, as `Hub.streamStats` reports them: shows whether backpressure holds. */
export interface RelayStats {
  /** Bytes queued at the hub towards the device and the service now. */
  bufferedToDevice: number;
  bufferedToService: number;
  /** Largest queues observed since pairing. */
  maxBufferedToDevice: number;
  maxBufferedToService: number;
  bytesRelayed: number;
}

/**
 * How long a side may take to answer the hub's close frame, or to close its TCP connection
 * once the close handshake is done, before it is cut off (ms).
 */
export const CLOSE_ANSWER_MS = 5000;

/** Pieces below this size produced by one read are joined into one write. */
const JOIN_BELOW = 4096;

type SideName = 'device' | 'service';

/** One socket of the pair: its reader, what was said about closing, its queue high mark. */
class Side {
  closeSent = false;
  closeReceived = false;
  ended = false;
  /** Reading is paused because the other side's queue is over the high-water mark. */
  blocked = false;
  maxBuffered = 0;
  /** Payload bytes of the data frame being written to this side that are still owed. */
  owed = 0;
  /** A pong that waits for the data frame being written to finish (frames never interleave). */
  private deferredPong: Buffer | undefined;
  reader!: FrameReader;
  /** Writes produced by the read being processed, flushed together (see flush()). */
  private out: Buffer[] = [];
  private reaper: NodeJS.Timeout | undefined;
  /** Trace only: data frames passed to this side, and flushes to it (counted only when tracing). */
  private tracedFrames = 0;
  private tracedFlushes = 0;

  constructor(
    readonly name: SideName,
    readonly socket: Socket,
  ) {
    socket.once('close', () => {
      this.ended = true;
      clearTimeout(this.reaper);
    });
  }

  /** Frames may still be written to this side. */
  get open(): boolean {
    return !this.closeSent && !this.ended && !this.socket.destroyed;
  }

  queue(b: Buffer): void {
    this.out.push(b);
  }

  /** Accounts for payload bytes queued for the current data frame; sends a waiting pong after it. */
  paid(n: number): void {
    this.owed -= n;
    if (this.owed !== 0) return;
    // The frame's last byte is queued: its number matches the sender's and the receiver's message count.
    trace?.(`hub.frame.${this.name} ${this.socket.remotePort} ${++this.tracedFrames}`);
    if (this.deferredPong) {
      this.out.push(this.deferredPong);
      this.deferredPong = undefined;
    }
  }

  /**
   * Queues a pong, or keeps it until the data frame being written ends; only the latest one is
   * kept (RFC 6455 5.5.3 allows answering only the most recent ping).
   */
  queuePong(frame: Buffer): void {
    if (this.owed > 0) this.deferredPong = frame;
    else this.out.push(frame);
  }

  /**
   * Writes what was queued: runs of small pieces (frame headers, small frames) joined into one
   * buffer, large payload pieces as they are, all in one writev. A read full of tiny frames
   * thus becomes one write, not thousands of queue entries that the byte count does not see.
   */
  flush(): void {
    const out = this.out;
    if (out.length === 0) return;
    this.out = [];
    if (this.ended || this.socket.destroyed) return;
    trace?.(`hub.write.${this.name} ${this.socket.remotePort} ${++this.tracedFlushes}`);
    this.socket.cork();
    coalesceSmall(out, JOIN_BELOW, (chunk) => this.socket.write(chunk));
    this.socket.uncork();
    if (trace !== undefined) traceWritten(trace, this.socket, `hub.written.${this.name} ${this.socket.remotePort} ${this.tracedFlushes}`);
  }

  /** Nothing is waiting to be written to this side (see queue()). */
  get idle(): boolean {
    return this.out.length === 0 && this.owed === 0;
  }

  /** Writes one whole frame at once (Splice.passWhole); only when idle. */
  writeFrame(frame: Buffer): void {
    if (this.ended || this.socket.destroyed) return;
    if (trace !== undefined) {
      trace(`hub.frame.${this.name} ${this.socket.remotePort} ${++this.tracedFrames}`);
      trace(`hub.write.${this.name} ${this.socket.remotePort} ${++this.tracedFlushes}`);
    }
    this.socket.write(frame);
    if (trace !== undefined) traceWritten(trace, this.socket, `hub.written.${this.name} ${this.socket.remotePort} ${this.tracedFlushes}`);
  }

  /** Sends a close frame (once) and ends the socket when the peer has answered, or after a while. */
  sendClose(code: number, reason: string): void {
    if (this.closeSent || this.ended || this.socket.destroyed) return;
    this.flush();
    this.closeSent = true;
    if (this.owed > 0) {
      // Mid-frame (its sender went away halfway): a close frame now would read as payload.
      this.end();
      return;
    }
    this.socket.write(closeFrame(code, reason));
    // Read again if backpressure had paused us: the answer to our close must get through.
    if (this.blocked) {
      this.blocked = false;
      this.socket.resume();
    }
    if (this.closeReceived) this.end();
    else this.reapAfter(CLOSE_ANSWER_MS);
  }

  /** Sends FIN; a peer that never closes its side is cut off after CLOSE_ANSWER_MS. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.socket.end();
    this.reapAfter(CLOSE_ANSWER_MS);
  }

  destroy(): void {
    this.ended = true;
    clearTimeout(this.reaper);
    this.socket.destroy();
  }

  private reapAfter(ms: number): void {
    clearTimeout(this.reaper);
    this.reaper = setTimeout(() => this.socket.destroy(), ms);
    this.reaper.unref();
  }
}

/** A live pair of stream sockets, built by the streaming endpoint once both sides arrived. */
export class Splice {
  bytes = 0;
  private finished = false;
  private readonly device: Side;
  private readonly service: Side;

  constructor(
    readonly streamId: string,
    device: Socket,
    service: Socket,
    private readonly limits: SpliceLimits,
    private readonly onEnd: (splice: Splice, reason: string) => void,
    private readonly onBytes: (n: number) => void,
  ) {
    this.device = new Side('device', device);
    this.service = new Side('service', service);
  }

  /**
   * Starts relaying: first the chunks each side sent before the pair was complete, then live.
   * Separate from the constructor so that the owner has registered the splice before early
   * data (a close frame, say) can end it.
   */
  start(early: { device: Buffer[]; service: Buffer[] }): void {
    this.wire(this.device, this.service);
    this.wire(this.service, this.device);
    for (const chunk of early.device) this.onChunk(this.device, this.service, chunk);
    for (const chunk of early.service) this.onChunk(this.service, this.device, chunk);
    // The waiting side was paused; both read now unless the early bytes already filled a queue.
    if (!this.device.blocked) this.device.socket.resume();
    if (!this.service.blocked) this.service.socket.resume();
  }

  private wire(src: Side, dst: Side): void {
    const sink: FrameSink = {
      dataHeader: (fin, opcode, length) => {
        if (!dst.open) return;
        dst.queue(frameHeader(fin, opcode, length));
        dst.owed = length;
        if (length === 0) dst.paid(0);
      },
      dataPiece: (piece) => {
        if (!dst.open) return;
        this.bytes += piece.length;
        this.onBytes(piece.length);
        dst.queue(piece);
        dst.paid(piece.length);
      },
      control: (opcode, payload) => this.onControl(src, dst, opcode, payload),
      violation: (code, message) => this.violation(src, dst, code, message),
    };
    src.reader = new FrameReader(sink, this.limits.maxFramePayload, 'server');
    // Reads of up to readBytes (its pieces are queued for writing and so outlive the read: see
    // ownReadsToKeep): fewer read syscalls and no fresh 64 KiB buffer per read. Plain TCP only;
    // a TLS socket, or one with bytes already buffered, reads the ordinary way.
    const onRead = (chunk: Buffer): void => {
      trace?.(`hub.read.${src.name} ${src.socket.remotePort}`);
      this.onChunk(src, dst, chunk);
    };
    const owned =
      this.limits.readBytes > 0 &&
      (src.socket as Socket & { encrypted?: boolean }).encrypted !== true &&
      ownReadsToKeep(
        src.socket,
        this.limits.readBytes,
        (chunk) => {
          onRead(chunk);
          return true; // backpressure pauses the socket itself (onChunk)
        },
        this.limits.idleReadBufferMs,
        // Its pieces were all written at once (the kernel took them; nothing is queued) and the
        // reader copied any control frame it still gathers: the buffer may take the next read.
        (buffer) => {
          src.reader.keepAcrossReads(buffer);
          return dst.socket.writableLength === 0;
        },
        this.limits.turnReadBytes,
      );
    if (!owned) src.socket.on('data', onRead);
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
      if (!src.closeReceived) this.finish(`${src.name} went away`, dst, CLOSE.goingAway);
    });
  }

  /** Fails `src` (RFC 6455 7.1.7): say why, then close without waiting. */
  private violation(src: Side, dst: Side, code: number, message: string): void {
    src.sendClose(code, message);
    src.end();
    this.finish(`${src.name} broke the protocol: ${message}`, dst, CLOSE.goingAway);
  }

  private onChunk(src: Side, dst: Side, chunk: Buffer): void {
    if (src.closeReceived) return; // nothing may follow a close frame
    if (!this.passWhole(src, dst, chunk)) {
      src.reader.push(chunk);
      dst.flush();
      src.flush(); // pongs
    }
    const out = dst.socket;
    const queued = out.writableLength;
    if (queued > dst.maxBuffered) dst.maxBuffered = queued;
    if (queued > this.limits.highWater && !src.blocked && !src.ended) {
      src.blocked = true;
      src.socket.pause();
      out.once('drain', () => {
        if (!src.blocked) return;
        src.blocked = false;
        if (!src.ended) src.socket.resume();
      });
    }
  }

  /**
   * A read that is one whole data frame (the usual small message: a keystroke, a request, an
   * acknowledgement) goes on as one write of that read, its header rewritten in place, instead
   * of as the reader's pieces behind a new header, joined into a new buffer and written corked.
   * Only between frames in both directions; anything else returns false, having read nothing.
   */
  private passWhole(src: Side, dst: Side, chunk: Buffer): boolean {
    if (!dst.open || !dst.idle) return false;
    const at = src.reader.wholeDataFrame(chunk);
    if (at < 0) return false;
    const length = chunk.length - at;
    this.bytes += length;
    this.onBytes(length);
    dst.writeFrame(asServerFrame(chunk, at));
    return true;
  }

  private onControl(src: Side, dst: Side, opcode: number, payload: Buffer): void {
    if (opcode === OPCODE.ping) {
      // Not towards a side that is not reading: RFC 6455 5.5.3 allows answering only some pings.
      if (src.open && src.socket.writableLength <= this.limits.highWater) src.queuePong(controlFrame(OPCODE.pong, payload));
      return;
    }
    if (opcode !== OPCODE.close) return; // pong: nothing to do
    const { code, reason } = parseClosePayload(payload);
    if (payload.length === 1 || (code !== 1005 && !isValidCloseCode(code))) {
      this.violation(
        src,
        dst,
        CLOSE.protocolError,
        payload.length === 1 ? 'close frame with a 1-byte payload' : `invalid close code ${code}`,
      );
      return;
    }
    src.closeReceived = true;
    if (src.closeSent)
      src.end(); // it answered our close
    else src.sendClose(code === 1005 ? CLOSE.normal : code, '');
    this.finish(
      `${src.name} closed (${code}${reason ? ` ${reason}` : ''})`,
      dst,
      code === CLOSE.normal || code === 1005 ? CLOSE.normal : CLOSE.goingAway,
    );
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
