/**
 * A message transport over the client end of a WebSocket whose opening handshake is done (see
 * `connectWebSocket`), written on the frame code the hub's splice uses instead of `ws`. Stream
 * sockets are opened and closed hundreds of times a second and carry every byte of a tunnel, so
 * what `ws` costs there counts: a request object per connect, a copy of each message that spans
 * two socket reads, and two or three errors with stack traces built on every close. Here a
 * message that spans reads goes up as views of the reads (`onMessageParts`), and a message
 * sent in parts goes out without being joined when it needs no masking.
 */
import { isUtf8 } from 'node:buffer';
import type { Socket } from 'node:net';
import { DEFAULT_MAX_MESSAGE_SIZE, DEFAULT_TRANSPORT_HIGH_WATER, type Transport } from './transport.js';
import { TransportBase } from './base.js';
import {
  CLOSE,
  closeFrame,
  controlFrame,
  FrameReader,
  frameHeader,
  isValidCloseCode,
  OPCODE,
  parseClosePayload,
  wholeFrame,
  type FrameSink,
} from './ws-frame.js';
import { coalesceSmall } from '../util/coalesce.js';
import { randomFromPool } from '../util/random-pool.js';
import { DevstreamsError } from '../errors.js';
import { trace, traceWritten } from '../util/trace.js';

/** Options of our own RFC 6455 client transport. */
export interface WebSocketClientTransportOptions {
  maxMessageSize?: number;
  highWaterMark?: number;
  /**
   * Send with an all-zero masking key, which leaves payloads as they are: for messages that are
   * ciphertext (sealed records). Masking exists so that script-controlled plaintext cannot
   * poison intermediary caches (RFC 6455 10.3); ciphertext is not script-controlled, and an
   * all-zero key saves a copy of every message here and the unmasking pass at the hub.
   */
  zeroMask?: boolean;
  /**
   * Read the socket (plain `ws:` only; TLS ignores it) into a buffer of this many bytes shared by
   * every socket of the process that asks for the same size, instead of a fresh buffer per read:
   * no allocation per read, and reads up to this size (a quarter of the syscalls of 64 KiB reads
   * for 256 KiB). Messages go up as views of it only to a handler that `borrowsReads`; for any
   * other the read is copied first. What the transport keeps across reads (a message or control
   * frame cut by the end of a read) is copied. Default off; `DEFAULT_OWNED_READ_BYTES` for sealed
   * streams.
   */
  ownedReadBytes?: number;
  /**
   * With `ownedReadBytes`: the socket stops reading once one readiness delivered this many bytes
   * and reads again at the end of the event-loop turn (src/util/read-turn.ts), so what else became
   * ready (a keystroke on another socket) is not held behind megabytes of records opened in one
   * turn. Default 0 (no bound); `DEFAULT_TURN_READ_BYTES` for sealed streams.
   */
  turnReadBytes?: number;
}

/**
 * Where a socket's reads go when it reads into a shared buffer (`onread`): the dialler points
 * it at its handshake reader, then the transport at its own.
 */
export interface OwnedReads {
  /** The shared buffer (one per size, per process). */
  readonly buffer: Buffer;
  /** Gets a view of the bytes just read; must be done with it (or copy it) before returning. */
  sink: (view: Buffer) => void;
}

/** How long the server may take to close TCP once our close frame is written, ms. */
export const CLOSE_WAIT_MS = 5000;
/**
 * How long what was queued before the close frame (and the frame) may take to be written before
 * the socket is cut, ms: a slow uplink flushing a full queue must not lose its tail to the
 * shorter wait above. The same as `ws` allows for a close handshake.
 */
export const CLOSE_FLUSH_MS = 30_000;

/** Pieces below this size are joined into one write with the frame header. */
const JOIN_BELOW = 4096;

const ZERO_KEY = Buffer.alloc(4);

/** A Transport over our own RFC 6455 client on a raw socket. */
export class WebSocketClientTransport extends TransportBase implements Transport {
  readonly maxMessageSize: number;
  private readonly highWaterMark: number;
  private readonly zeroMask: boolean;
  private readonly reader: FrameReader;
  private readonly sink: FrameSink;
  private readonly onWritten = (): void => this.drainedTo(this.sock.writableLength, this.highWaterMark);
  /** Frames sent in this turn of the event loop wait in the socket's cork until its end (see send). */
  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.sock.uncork();
  };
  private closeSent = false;
  private closeReceived = false;
  private reaper: NodeJS.Timeout | undefined;
  /** The message being received: its pieces so far, and what is left of its current frame. */
  private parts: Buffer[] = [];
  private messageBytes = 0;
  private frameLeft = 0;
  private frameFin = false;
  /** Trace only: the socket's local port, and messages sent and received (counted only when tracing). */
  private readonly traceTag: string;
  private tracedSent = 0;
  private tracedReceived = 0;

  /**
   * `url` is what was dialled (for messages and callers); `head` holds bytes that arrived after
   * the handshake answer in the same read (a copy of them when `reads` is given); `reads` when
   * the socket reads into a shared buffer.
   */
  constructor(
    private readonly sock: Socket,
    readonly url: string,
    head: Buffer,
    options: WebSocketClientTransportOptions = {},
    reads?: OwnedReads,
  ) {
    super();
    this.maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.highWaterMark = options.highWaterMark ?? DEFAULT_TRANSPORT_HIGH_WATER;
    this.zeroMask = options.zeroMask === true;
    this.sink = {
      dataHeader: (fin, opcode, length) => this.onDataHeader(fin, opcode, length),
      dataPiece: (piece) => this.onDataPiece(piece),
      control: (opcode, payload) => this.onControl(opcode, payload),
      violation: (code, message) =>
        this.fail(
          code,
          code === CLOSE.tooBig
            ? new DevstreamsError('ERR_TRANSPORT_MESSAGE_TOO_LARGE', message)
            : new DevstreamsError('ERR_PROTOCOL_FRAME', `server broke the WebSocket protocol: ${message}`),
        ),
    };
    this.reader = new FrameReader(this.sink, this.maxMessageSize, 'client');
    const socket = sock;
    this.traceTag = trace === undefined ? '' : String(sock.localPort);
    socket.setNoDelay(true);
    if (reads) reads.sink = (view) => this.onOwnedRead(view);
    else
      socket.on('data', (chunk: Buffer) => {
        trace?.(`ws.read ${this.traceTag}`);
        this.reader.push(chunk);
      });
    socket.on('drain', this.onWritten);
    socket.on('end', () => {
      if (!this.closeReceived) this.lost('the server ended the connection without a close frame (1006)');
    });
    socket.on('error', (err) => this.lost(`websocket error: ${err.message}`, err));
    socket.on('close', () => {
      clearTimeout(this.reaper);
      this.lost('connection lost (1006)');
    });
    if (head.length > 0) this.reader.push(head);
  }

  /** The underlying socket, for callers that need its address or to pause reading. */
  get socket(): Socket {
    return this.sock;
  }

  get bufferedAmount(): number {
    return this.sock.writableLength;
  }

  send(parts: readonly Buffer[]): boolean {
    if (this.isClosed || this.closeSent || this.sock.destroyed) return false;
    let size = 0;
    for (const part of parts) size += part.length;
    // Message number on this connection (the hub counts the same frames), bytes queued ahead of it here, its size.
    trace?.(`ws.send ${this.traceTag} ${++this.tracedSent} ${this.sock.writableLength} ${size}`);
    if (size > this.maxMessageSize) {
      this.close(new DevstreamsError('ERR_TRANSPORT_MESSAGE_TOO_LARGE', `message of ${size} bytes exceeds ${this.maxMessageSize}`));
      return false;
    }
    // Writes that leave the queue past half the high-water mark report their completion, so the
    // sender resumes as soon as the queue is back under the mark (not only once it is empty, and
    // also when the queue never reached the socket's own mark, where no 'drain' would come).
    const onWritten = this.sock.writableLength + size > this.highWaterMark / 2 ? this.onWritten : undefined;
    if (this.zeroMask && size < JOIN_BELOW) {
      // A small message (a keystroke, an ACK, a request): header and pieces joined in one buffer.
      this.corkTurn();
      this.sock.write(wholeFrame(OPCODE.binary, parts, size, ZERO_KEY), onWritten);
    } else if (this.zeroMask) {
      const chunks: Uint8Array[] = [];
      coalesceSmall([frameHeader(true, OPCODE.binary, size, ZERO_KEY), ...parts], JOIN_BELOW, (chunk) => chunks.push(chunk));
      this.corkTurn();
      const last = chunks.length - 1;
      for (let i = 0; i < last; i++) this.sock.write(chunks[i]!);
      this.sock.write(chunks[last]!, onWritten);
    } else {
      // A masked copy in one buffer: the caller's buffers must stay as they are.
      this.sock.write(wholeFrame(OPCODE.binary, parts, size, this.maskKey()), onWritten);
    }
    if (trace !== undefined) traceWritten(trace, this.sock, `ws.written ${this.traceTag} ${this.tracedSent}`);
    return this.acceptsMore(this.sock.writableLength, this.highWaterMark);
  }

  /**
   * Every frame of this turn (a mux flush sends several records at once) goes out in one
   * writev when the turn ends: one syscall, one wake-up of the reader, instead of one per
   * record. process.nextTick runs before any I/O, so nothing waits longer than the turn.
   */
  private corkTurn(): void {
    if (this.corked) return;
    this.corked = true;
    this.sock.cork();
    process.nextTick(this.uncork);
  }

  close(error?: Error): void {
    if (this.isClosed) return;
    const reason = error instanceof DevstreamsError ? error.code : error ? 'error' : '';
    this.startClose(error ? CLOSE.internalError : CLOSE.normal, reason);
    this.deliverClose(error);
  }

  /**
   * Sends a close frame (once) behind what is queued, ends our half of TCP, and gives the server
   * a bounded time to close: CLOSE_FLUSH_MS for the queue to be written, then CLOSE_WAIT_MS.
   */
  private startClose(code: number, reason: string): void {
    if (this.sock.destroyed) return;
    if (!this.closeSent && this.sock.writable) {
      this.closeSent = true;
      this.sock.write(closeFrame(code, reason, this.maskKey()), () => this.reapAfter(CLOSE_WAIT_MS));
    }
    if (!this.sock.writableEnded) this.sock.end();
    if (this.reaper === undefined) this.reapAfter(CLOSE_FLUSH_MS);
  }

  /** The key for the next frame: all zeros for sealed records, otherwise fresh. */
  private maskKey(): Buffer {
    return this.zeroMask ? ZERO_KEY : randomFromPool(4);
  }

  private reapAfter(ms: number): void {
    if (this.sock.destroyed) return;
    clearTimeout(this.reaper);
    this.reaper = setTimeout(() => this.sock.destroy(), ms);
    this.reaper.unref();
  }

  private fail(code: number, error: DevstreamsError): void {
    if (this.isClosed) return;
    this.startClose(code, error.message);
    this.deliverClose(error);
  }

  private lost(message: string, cause?: Error): void {
    if (this.isClosed) return;
    this.deliverClose(new DevstreamsError('ERR_TRANSPORT_CLOSED', message, cause ? { cause } : undefined));
    this.sock.destroy();
  }

  /** A read into the shared buffer: the bytes are valid only until this returns. */
  private onOwnedRead(view: Buffer): void {
    trace?.(`ws.read ${this.traceTag}`);
    if (!this.handlerBorrowsReads) {
      this.reader.push(Buffer.from(view));
      return;
    }
    this.reader.push(view);
    // Copy-if-retained: a message cut by the end of this read keeps its first pieces until the rest comes.
    for (let i = 0; i < this.parts.length; i++) {
      const part = this.parts[i]!;
      if (part.buffer === view.buffer) this.parts[i] = Buffer.from(part);
    }
    this.reader.keepAcrossReads(view.buffer);
  }

  private onDataHeader(fin: boolean, opcode: number, length: number): void {
    if (opcode === OPCODE.text) {
      this.fail(1003, new DevstreamsError('ERR_PROTOCOL_FRAME', 'peer sent a text WebSocket message; devstreams speaks binary only'));
      return;
    }
    if (opcode === OPCODE.binary) {
      this.parts = [];
      this.messageBytes = 0;
    }
    this.messageBytes += length;
    if (this.messageBytes > this.maxMessageSize) {
      this.fail(CLOSE.tooBig, new DevstreamsError('ERR_TRANSPORT_MESSAGE_TOO_LARGE', `message of more than ${this.maxMessageSize} bytes`));
      return;
    }
    this.frameLeft = length;
    this.frameFin = fin;
    if (length === 0 && fin) this.endMessage();
  }

  private onDataPiece(piece: Buffer): void {
    if (this.isClosed) return;
    this.parts.push(piece);
    this.frameLeft -= piece.length;
    if (this.frameLeft === 0 && this.frameFin) this.endMessage();
  }

  private endMessage(): void {
    trace?.(`ws.msg ${this.traceTag} ${++this.tracedReceived}`);
    const parts = this.parts;
    this.parts = [];
    if (parts.length === 0) this.deliverMessage(Buffer.alloc(0));
    else if (parts.length === 1) this.deliverMessage(parts[0]!);
    else this.deliverMessageParts(parts);
  }

  private onControl(opcode: number, payload: Buffer): void {
    if (opcode === OPCODE.ping) {
      // Not towards a server that is not reading: RFC 6455 5.5.3 allows answering only some pings.
      if (!this.closeSent && !this.sock.destroyed && this.sock.writableLength <= this.highWaterMark) {
        this.sock.write(controlFrame(OPCODE.pong, payload, this.maskKey()));
      }
      return;
    }
    if (opcode !== OPCODE.close) return; // an unsolicited pong
    this.closeReceived = true;
    if (payload.length === 1 || (payload.length >= 2 && !isValidCloseCode(payload.readUInt16BE(0)))) {
      this.fail(CLOSE.protocolError, new DevstreamsError('ERR_PROTOCOL_FRAME', 'server sent an invalid close frame'));
      return;
    }
    if (payload.length > 2 && !isUtf8(payload.subarray(2))) {
      this.fail(1007, new DevstreamsError('ERR_PROTOCOL_FRAME', 'server sent a close reason that is not UTF-8'));
      return;
    }
    const { code, reason } = parseClosePayload(payload);
    this.startClose(code === 1005 ? CLOSE.normal : code, '');
    if (this.isClosed) return;
    const normal = code === CLOSE.normal || code === 1005;
    this.deliverClose(
      normal
        ? undefined
        : new DevstreamsError('ERR_TRANSPORT_CLOSED', `websocket closed with ${code}${reason.length ? `: ${reason}` : ''}`),
    );
  }
}
