/**
 * One logical TCP connection inside a session, as a Node Duplex: write to send, read to
 * receive, `end()` half-closes (CLOSE frame, like TCP FIN), `destroy()` or `reset()` aborts
 * (RESET frame). The channel holds its own send queue and receive window; the session owns
 * scheduling and the wire.
 *
 * Life of a channel (docs/PROTOCOL.md, "Channel states"; the table is in channel-state.ts):
 * opening (opener sent OPEN, may already send DATA within its starting credit) -> open (ACCEPT
 * seen) -> half-closed local / remote -> closed. A RESET in any state, or a refusal before
 * ACCEPT, destroys it with the peer's code.
 */
import { Duplex } from 'node:stream';
import { DevstreamsError, type ErrorCode } from '../errors.js';
import { ChannelState, awaitingAccept, nextChannelState, peerMaySend, type ChannelEvent } from './channel-state.js';
import type { MuxConfig } from './config.js';
import { wireFromCode } from './constants.js';
import type { ChannelTarget } from './frame.js';
import type { ReceiveWindow } from './flow.js';
import type { RingMember } from './ring.js';

/** What a channel needs from its session. */
export interface ChannelHost {
  readonly config: MuxConfig;
  /** The channel has data or a CLOSE to send. */
  scheduleSend(channel: Channel): void;
  /** Queue a RESET for the channel. */
  sendReset(channel: Channel, wireCode: number, reason: string): void;
  /** The reader consumed `n` bytes: grant credit as policy says. */
  consumed(channel: Channel, n: number): void;
  /** The channel is gone: forget it and return its unconsumed bytes to the session window. */
  detach(channel: Channel, unconsumed: number): void;
}

/** Readable buffer level above which the stream signals its consumer to slow down. */
const READABLE_HIGH_WATER = 64 * 1024;

/** One channel of a session: a Node Duplex (see the module comment). */
export class Channel extends Duplex implements RingMember {
  /** Channel id on the wire: odd when the initiator opened it, even for the responder. */
  readonly id: number;
  /** What the opener asked to reach. */
  readonly target: ChannelTarget;
  /** True when this side opened the channel. */
  readonly outbound: boolean;

  /** @internal scheduler membership */
  inRing = false;
  /** @internal bytes the peer still lets us send */
  sendCredit: number;
  /** @internal receive window */
  readonly recvWindow: ReceiveWindow;

  private readonly host: ChannelHost;
  private pending: Buffer[] = [];
  private pendingHead = 0;
  private pendingOffset = 0;
  private pendingBytesCount = 0;
  private writeCallback: ((error?: Error | null) => void) | undefined;
  /** end() was called and waits for the queue to empty and the CLOSE to go. */
  private finalCallback: ((error?: Error | null) => void) | undefined;
  private phase: ChannelState;
  private received = 0;
  private consumedReported = 0;
  private openTimer: NodeJS.Timeout | undefined;

  /** @internal created by Session */
  constructor(host: ChannelHost, id: number, target: ChannelTarget, outbound: boolean, sendCredit: number, recvWindow: ReceiveWindow) {
    super({ allowHalfOpen: true, readableHighWaterMark: READABLE_HIGH_WATER, writableHighWaterMark: 64 * 1024 });
    this.host = host;
    this.id = id;
    this.target = target;
    this.outbound = outbound;
    this.phase = outbound ? ChannelState.Opening : ChannelState.Open;
    this.sendCredit = sendCredit;
    this.recvWindow = recvWindow;
    if (outbound) {
      this.openTimer = setTimeout(() => this.onOpenTimeout(), host.config.openTimeoutMs);
      this.openTimer.unref();
    }
  }

  /** Where the channel is in its life (see channel-state.ts). */
  get state(): ChannelState {
    return this.phase;
  }

  /** True once the accepting side said yes (always true on the accepting side). Says nothing once reset. */
  get accepted(): boolean {
    return !awaitingAccept(this.phase);
  }

  /** Bytes written by the application and not yet handed to the transport. */
  get pendingBytes(): number {
    return this.pendingBytesCount;
  }

  /** Bytes received and not yet read by the application. */
  get unreadBytes(): number {
    return this.readableLength;
  }

  /**
   * Aborts the channel and tells the peer why with `code` (for a proxy: the TCP connection
   * was reset, or the target refused). The local side is destroyed without an error.
   */
  reset(code: ErrorCode = 'ERR_CHANNEL_RESET', reason = ''): void {
    if (this.destroyed) return;
    this.sendResetOnce(wireFromCode(code), reason);
    this.destroy();
  }

  // ---- Duplex implementation ----

  /**
   * A Buffer written with nothing else queued in the Writable goes straight to the channel's
   * send queue when its callback would come at once anyway (the queue stays within
   * channelSendBuffer and the chunk is below the Writable's mark): the same outcome as through
   * `_write`, without the Writable's bookkeeping and its after-write tick, which is a turn of
   * the tick queue per socket read in the proxies. Anything else goes the ordinary way.
   */
  // The Writable's two signatures, so a caller's callback is typed as it is on any Writable.
  override write(chunk: unknown, callback?: (error: Error | null | undefined) => void): boolean;
  override write(chunk: unknown, encoding: BufferEncoding, callback?: (error: Error | null | undefined) => void): boolean;
  override write(chunk: unknown, ...rest: unknown[]): boolean {
    if (
      rest.length === 0 &&
      Buffer.isBuffer(chunk) &&
      chunk.length > 0 &&
      chunk.length < this.writableHighWaterMark &&
      this.writableLength === 0 &&
      !this.writableNeedDrain &&
      this.writableCorked === 0 &&
      !this.writableEnded &&
      !this.destroyed &&
      this.pendingBytesCount + chunk.length <= this.host.config.channelSendBuffer
    ) {
      this.pending.push(chunk);
      this.pendingBytesCount += chunk.length;
      this.host.scheduleSend(this);
      return true;
    }
    return (super.write as (this: Channel, chunk: unknown, ...rest: unknown[]) => boolean).call(this, chunk, ...rest);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (chunk.length === 0) {
      callback();
      return;
    }
    this.pending.push(chunk);
    this.pendingBytesCount += chunk.length;
    this.host.scheduleSend(this);
    if (this.pendingBytesCount <= this.host.config.channelSendBuffer) callback();
    else this.writeCallback = callback;
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.finalCallback = callback;
    this.host.scheduleSend(this);
  }

  override _read(): void {
    this.reportConsumed();
  }

  override read(size?: number): ReturnType<Duplex['read']> {
    const chunk = super.read(size) as unknown;
    this.reportConsumed();
    return chunk;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.openTimer) clearTimeout(this.openTimer);
    if (this.phase !== ChannelState.Closed) {
      const code = error instanceof DevstreamsError ? error.code : 'ERR_CHANNEL_RESET';
      this.sendResetOnce(wireFromCode(code), error?.message ?? 'channel destroyed');
    }
    this.pending = [];
    this.pendingHead = 0;
    this.pendingBytesCount = 0;
    const unconsumed = this.received - this.consumedReported;
    this.consumedReported = this.received;
    this.host.detach(this, unconsumed);
    const pendingWrite = this.writeCallback;
    this.writeCallback = undefined;
    pendingWrite?.(error ?? new DevstreamsError('ERR_CHANNEL_RESET', 'channel destroyed'));
    callback(error);
  }

  // ---- called by the session ----

  /** @internal ACCEPT arrived. */
  onAccepted(): void {
    this.move('recv-accept', 'ACCEPT');
    if (this.openTimer) clearTimeout(this.openTimer);
    this.openTimer = undefined;
    this.emit('accepted');
  }

  /** @internal DATA arrived (already checked against the window). */
  onData(payload: Buffer): void {
    if (!peerMaySend(this.phase)) throw new DevstreamsError('ERR_PROTOCOL_STATE', `DATA after CLOSE on channel ${this.id}`);
    this.received += payload.length;
    // Payload is a view into the received message; the message is not reused, so no copy.
    // A flowing channel with nothing buffered hands it to its 'data' listeners at once, as
    // push() would, without the Readable's bookkeeping and its read-more tick per chunk. Not with
    // setEncoding(): push() decodes (and holds a character split across frames), emit would not.
    if (
      this.readableFlowing === true &&
      this.readableLength === 0 &&
      !this.readableEnded &&
      this.readableEncoding === null &&
      this.listenerCount('data') > 0
    )
      this.emit('data', payload);
    else this.push(payload);
    this.reportConsumed();
  }

  /** @internal CLOSE arrived: the peer will send no more. */
  onRemoteClose(): void {
    if (!peerMaySend(this.phase)) return; // a second CLOSE, or one for a channel already aborted
    this.move('recv-close', 'CLOSE');
    this.push(null);
    this.maybeFinished();
  }

  /** @internal RESET arrived, or the session ended. */
  onReset(code: ErrorCode, message: string): void {
    this.phase = ChannelState.Reset; // never answer a reset with a reset
    this.destroy(new DevstreamsError(code, message));
  }

  /** @internal session ended: no RESET can be sent anymore. */
  onSessionEnd(error: DevstreamsError | undefined): void {
    this.phase = ChannelState.Reset;
    if (!this.destroyed) this.destroy(error);
  }

  /** @internal True while there is data the scheduler could send, or a CLOSE to send. */
  get hasSendWork(): boolean {
    return this.pendingBytesCount > 0 || this.finalCallback !== undefined;
  }

  /**
   * @internal Takes up to `max` bytes of queued data as buffer views (no copy) into `out`.
   * Returns the number of bytes taken.
   */
  takeData(max: number, out: Buffer[]): number {
    let taken = 0;
    while (taken < max && this.pendingHead < this.pending.length) {
      const chunk = this.pending[this.pendingHead]!;
      const available = chunk.length - this.pendingOffset;
      const n = Math.min(available, max - taken);
      out.push(this.pendingOffset === 0 && n === chunk.length ? chunk : chunk.subarray(this.pendingOffset, this.pendingOffset + n));
      taken += n;
      if (n === available) {
        this.pending[this.pendingHead++] = EMPTY;
        this.pendingOffset = 0;
      } else {
        this.pendingOffset += n;
      }
    }
    if (this.pendingHead === this.pending.length) {
      this.pending.length = 0;
      this.pendingHead = 0;
    } else if (this.pendingHead > 64) {
      this.pending = this.pending.slice(this.pendingHead);
      this.pendingHead = 0;
    }
    this.pendingBytesCount -= taken;
    this.sendCredit -= taken;
    if (this.writeCallback && this.pendingBytesCount <= this.host.config.channelSendBuffer) {
      const callback = this.writeCallback;
      this.writeCallback = undefined;
      callback();
    }
    return taken;
  }

  /** @internal True when the queue is empty and end() was called: the CLOSE goes out now. */
  takeClose(): boolean {
    if (this.pendingBytesCount > 0 || !this.finalCallback) return false;
    const next = nextChannelState(this.phase, 'send-close');
    if (next === undefined) return false;
    this.phase = next;
    const callback = this.finalCallback;
    this.finalCallback = undefined;
    callback();
    this.maybeFinished();
    return true;
  }

  private maybeFinished(): void {
    // Both directions closed cleanly: release the id now rather than waiting for autoDestroy.
    if (this.phase === ChannelState.Closed) this.host.detach(this, 0);
  }

  private reportConsumed(): void {
    const consumed = this.received - this.readableLength;
    const delta = consumed - this.consumedReported;
    if (delta <= 0) return;
    this.consumedReported = consumed;
    this.host.consumed(this, delta);
  }

  private sendResetOnce(wireCode: number, reason: string): void {
    if (this.phase === ChannelState.Reset) return;
    this.phase = ChannelState.Reset;
    this.host.sendReset(this, wireCode, reason);
  }

  /** Takes the transition for a frame the peer sent; one the state does not allow is a protocol error. */
  private move(event: ChannelEvent, frame: string): void {
    const next = nextChannelState(this.phase, event);
    if (next === undefined) throw new DevstreamsError('ERR_PROTOCOL_STATE', `${frame} on channel ${this.id} in state ${this.phase}`);
    this.phase = next;
  }

  private onOpenTimeout(): void {
    this.openTimer = undefined;
    if (!awaitingAccept(this.phase) || this.destroyed) return;
    this.destroy(
      new DevstreamsError(
        'ERR_OPEN_TIMEOUT',
        `no answer to open of ${this.target.host}:${this.target.port} within ${this.host.config.openTimeoutMs} ms`,
      ),
    );
  }
}

const EMPTY = Buffer.alloc(0);
