/**
 * Joins a local TCP socket and a mux channel with TCP semantics end to end: bytes both ways with
 * backpressure (pipe), EOF carried as half-close in each direction independently, and a reset
 * carried as a reset. Used by both proxies.
 */
import type net from 'node:net';
import type { Channel } from '../mux/index.js';
import type { DevstreamsError } from '../errors.js';
import { trace } from '../util/trace.js';

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

/** Joins `socket` and `channel` until both are done (see the module comment); never throws, reports through `events`. */
export function bridge(socket: net.Socket, channel: Channel, events: BridgeEvents = {}): void {
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
  // pipe() carries 'end' as end(): a FIN on one side becomes a CLOSE on the channel and back.
  if (trace !== undefined) {
    // Tagged with the socket's ports, so one connection's points can be told from another's.
    const t = trace;
    const tag = `${socket.localPort}:${socket.remotePort}`;
    t(`chan ${channel.id} ${tag}`);
    socket.on('data', () => t(`sock.read ${tag}`));
    channel.on('data', () => t(`sock.write ${tag}`));
  }
  socket.pipe(channel);
  channel.pipe(socket);
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

/** Maps a connect error to the refusal code the opener sees. */
export function connectErrorCode(err: NodeJS.ErrnoException): DevstreamsError['code'] {
  return err.code === 'ECONNREFUSED' ? 'ERR_TARGET_REFUSED' : 'ERR_TARGET_UNREACHABLE';
}
