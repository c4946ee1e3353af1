/**
 * Joins a local TCP socket and a mux channel with TCP semantics end to end: bytes both ways with
 * backpressure (pipe), EOF carried as half-close in each direction independently, and a reset
 * carried as a reset. Used by both proxies.
 */
import type net from 'node:net';
import type { Channel } from '../mux/index.js';
import { DevstreamsError } from '../errors.js';
import { DEFAULT_OWNED_READ_BYTES } from '../util/shared-read-buffer.js';
import { trace } from '../util/trace.js';
import { ownReadsToKeep } from '../util/owned-reads.js';
import { DEFAULT_TURN_READ_BYTES } from '../util/read-turn.js';

/** What one bridged connection carried, for a closing log line. */
export interface BridgeStats {
  /** From the bridge's start to its end, ms. */
  durationMs: number;
  /** Bytes read from the local socket (sent into the tunnel). */
  bytesIn: number;
  /** Bytes written to the local socket (received from the tunnel). */
  bytesOut: number;
}

/** What a bridge tells its owner, for logs and metrics. */
export interface BridgeEvents {
  /** Called once when both sides are gone, with the error that ended it, if any. */
  onDone?(error: Error | undefined, stats: BridgeStats): void;
}

/** How a bridge reads its socket. */
export interface BridgeOptions {
  /**
   * Largest read of the socket (ownReadsToKeep in owned-reads.ts): into the process-wide shared
   * buffer and copied for the channel (which keeps it until the peer has it), or, while the socket
   * streams, into a fresh buffer of this size that goes as it is; 0 reads the ordinary way, a
   * fresh 64 KiB buffer per read. Default `DEFAULT_OWNED_READ_BYTES`.
   */
  readBufferBytes?: number;
  /**
   * A socket that streamed and then read nothing for this long (ms) gives its fresh read buffer
   * back (ownReadsToKeep), so a connection quiet after a burst does not keep one; 0 never does.
   * Default `DEFAULT_IDLE_READ_BUFFER_MS`.
   */
  idleReadBufferMs?: number;
  /**
   * With owned reads: bytes the socket delivers in one readiness before it reads again at the end
   * of the event-loop turn (src/util/read-turn.ts), so a bulk upload does not hold a keystroke on
   * another socket behind megabytes read, framed and sealed in one turn. Default
   * `DEFAULT_TURN_READ_BYTES`; 0 no bound.
   */
  turnReadBytes?: number;
  /**
   * How many polls of the event loop the far side's end (the channel's CLOSE) waits before it
   * ends the local socket (FIN): see `DEFAULT_FIN_HOLD_POLLS`. 0 ends it at once.
   */
  finHoldPolls?: number;
}

/**
 * Default of `finHoldPolls`. Connections opened one after another put connection N's CLOSE in the
 * record that carries N+1's OPEN (service to device) or N+1's answer (device to service): the
 * mux holds a lone CLOSE for that. Ending N's socket at once then runs N's teardown (the FIN, the
 * target's FIN back, the socket's close, its log line) in the middle of N+1's set-up: on the
 * device between N+1's connect() and its completion, on the service before N+1's first bytes go
 * to the client. After one more poll, N+1's connect has completed and its bytes are written.
 */
export const DEFAULT_FIN_HOLD_POLLS = 1;

/** Joins `socket` and `channel` until both are done (see the module comment); never throws, reports through `events`. */
export function bridge(socket: net.Socket, channel: Channel, events: BridgeEvents = {}, options: BridgeOptions = {}): void {
  socket.setNoDelay(true);
  const started = performance.now();
  let done = false;
  const finish = (error?: Error): void => {
    if (done) return;
    done = true;
    events.onDone?.(error, { durationMs: performance.now() - started, bytesIn: socket.bytesRead, bytesOut: socket.bytesWritten });
  };
  if (channel.destroyed) {
    // Reset or gone while the connection was being set up (the device was still connecting).
    // Told on the next tick, as every other end is: never inside bridge() itself, so a caller
    // that reports the bridged connection right after this call reports it before its end.
    socket.resetAndDestroy();
    process.nextTick(finish);
    return;
  }
  if (socket.destroyed) {
    // The local client reset (or went) while its channel was being opened: its 'error' and
    // 'close' have come and gone, so nothing below would ever end the channel.
    const error = new DevstreamsError('ERR_CHANNEL_RESET', 'local connection closed before its channel was open');
    channel.reset(error.code, error.message);
    process.nextTick(finish, error);
    return;
  }
  // Tagged with the socket's ports, so one connection's points can be told from another's.
  const tag = trace !== undefined ? `${socket.localPort}:${socket.remotePort}` : '';
  if (trace !== undefined) {
    const t = trace;
    t(`chan ${channel.id} ${tag}`);
    channel.on('data', () => t(`sock.write ${tag}`));
  }
  // pipe() carries 'end' as end(): a FIN on one side becomes a CLOSE on the channel and back.
  const readBytes = options.readBufferBytes ?? DEFAULT_OWNED_READ_BYTES;
  if (!readIntoChannel(socket, channel, readBytes, options.idleReadBufferMs, options.turnReadBytes ?? DEFAULT_TURN_READ_BYTES, tag)) {
    if (trace !== undefined) {
      const t = trace;
      socket.on('data', () => t(`sock.read ${tag}`));
    }
    socket.pipe(channel);
  }
  writeFromChannel(channel, socket, options.finHoldPolls ?? DEFAULT_FIN_HOLD_POLLS);
  socket.on('error', (err: NodeJS.ErrnoException) => {
    // The local peer reset or failed: abort the channel so the far side sees a reset too.
    channel.reset(err.code === 'ECONNRESET' ? 'ERR_CHANNEL_RESET' : 'ERR_TARGET_UNREACHABLE', err.code ?? err.message);
    finish(err);
  });
  channel.on('error', (err: Error) => {
    // The far side reset (or the session died): reset the local TCP connection (RST, not FIN).
    if (!socket.destroyed) socket.resetAndDestroy();
    finish(err);
  });
  let closed = 0;
  const onClose = (): void => {
    if (++closed === 2) finish();
  };
  socket.once('close', () => {
    // A socket that went away without a clean FIN both ways (destroyed locally, or it could no
    // longer take the channel's data) aborts the channel; after a clean close the channel
    // finishes on its own once its queued bytes and CLOSE are out.
    if (!channel.destroyed && !(socket.readableEnded && socket.writableFinished))
      channel.reset('ERR_CHANNEL_RESET', 'local connection closed');
    onClose();
  });
  channel.once('close', () => {
    // A channel destroyed without an error (the session closed locally) emits neither 'error'
    // nor 'end': the local connection must not be left open.
    if (!socket.destroyed && !(channel.readableEnded && channel.writableFinished)) socket.resetAndDestroy();
    onClose();
  });
}

/**
 * The socket -> channel half with owned reads (ownReadsToKeep: the channel, the mux batch and the
 * resumable layer's replay keep each chunk until the peer acknowledges it), as pipe() would do
 * it: reading stops while the channel holds back its write callback (its mux send buffer is full)
 * and starts again at its 'drain'; EOF ends the channel. Returns false when the socket cannot read
 * that way (see ownReads); the caller pipes instead.
 */
function readIntoChannel(
  socket: net.Socket,
  channel: Channel,
  bytes: number,
  idleMs: number | undefined,
  turnBytes: number,
  tag: string,
): boolean {
  if (bytes <= 0) return false;
  const resume = (): void => {
    if (!socket.destroyed) socket.resume();
  };
  const owned = ownReadsToKeep(
    socket,
    bytes,
    (chunk) => {
      if (trace !== undefined) trace(`sock.read ${tag}`);
      if (channel.destroyed || channel.writableEnded) return true; // its end is handled by the close/error listeners
      // Wait for 'drain' as pipe() does when write() says so, but only if the channel did hold
      // the write back: a write of the Writable's high-water mark or more always says so, and
      // stopping and restarting reads for each (two syscalls) would cost more than the read.
      // A write that says yes never waits: 'drain' comes only after one that said no.
      if (channel.write(chunk) || channel.writableLength === 0) return true;
      channel.once('drain', resume);
      return false;
    },
    idleMs,
    undefined,
    turnBytes,
  );
  if (!owned) return false;
  socket.once('end', () => {
    if (!channel.destroyed && !channel.writableEnded) channel.end();
  });
  return true;
}

/** What one turn's batch of channel chunks may queue in the local socket before the channel waits. */
const WRITE_BATCH_BYTES = 256 * 1024;

/**
 * The channel -> socket half, as pipe() would do it but with one write syscall per turn of the
 * event loop: one sealed ws read (256 KiB) opens into several records and so several chunks, each
 * of which pipe() wrote with its own syscall (and its own wake-up of the reader), pausing the
 * channel after each since a 64 KiB write is past the socket's high-water mark. Here the chunks of
 * a turn wait in the socket's cork and go in one writev at its end (process.nextTick: before any
 * I/O). Then, if the kernel did not take them all and the socket will say 'drain', the channel
 * pauses until it does. The channel's end ends the socket (half-close).
 */
function writeFromChannel(channel: Channel, socket: net.Socket, finHoldPolls: number): void {
  let corked = false;
  const resume = (): void => {
    if (!channel.destroyed) channel.resume();
  };
  const uncork = (): void => {
    corked = false;
    socket.uncork();
    // Still queued after the writev: wait for it, but only where 'drain' will come (a write at or
    // past the socket's mark); a small remainder is caught by the next turn's check.
    if (socket.writableLength > 0 && socket.writableNeedDrain && !socket.destroyed) {
      channel.pause();
      socket.once('drain', resume);
    } else if (channel.isPaused()) resume(); // stopped at the batch bound below, and the kernel took it
  };
  channel.on('data', (chunk: Buffer) => {
    if (socket.destroyed || socket.writableEnded) return; // its end is handled by the close/error listeners
    if (!corked) {
      corked = true;
      socket.cork();
      process.nextTick(uncork);
    }
    socket.write(chunk);
    // A channel resumed with a full receive window behind it would hand all of it over in this
    // one turn (up to maxWindow, 16 MiB): the batch stops at WRITE_BATCH_BYTES, as pipe() stopped
    // at the socket's mark, so the bytes wait in the channel, inside its window, not in the socket.
    if (socket.writableLength >= WRITE_BATCH_BYTES) channel.pause();
  });
  const end = (): void => {
    if (!socket.destroyed && !socket.writableEnded) socket.end();
  };
  channel.once('end', () => afterPolls(finHoldPolls, end));
}

/**
 * Runs `fn` once the event loop has polled for I/O `polls` more times (0: now). An immediate set
 * from the poll phase runs before the next poll; one set from that immediate runs after it.
 */
function afterPolls(polls: number, fn: () => void): void {
  if (polls <= 0) fn();
  else setImmediate(() => setImmediate(afterPolls, polls - 1, fn));
}

/** Maps a connect error to the refusal code the opener sees. */
export function connectErrorCode(err: NodeJS.ErrnoException): DevstreamsError['code'] {
  return err.code === 'ECONNREFUSED' ? 'ERR_TARGET_REFUSED' : 'ERR_TARGET_UNREACHABLE';
}
