/**
 * A bound on what one socket's reads hand the process in one turn of the event loop. libuv reads
 * a readable socket up to 32 times in a row while each read fills its buffer: from a socket that
 * a bulk sender keeps full, 32 x 256 KiB, and everything those bytes cause (records opened,
 * sealed, written) runs before the loop polls again. A keystroke that became readable on another
 * socket meanwhile waits for all of it (measured: device proxy turns of 1-10 ms under iperf3,
 * up to 5 MiB from the stream socket at once). With the bound, a socket that has delivered
 * `bytes` in one readiness stops reading, and reads again at the end of this turn (setImmediate):
 * the loop polls first, so whatever else became ready waits behind at most `bytes` of bulk work,
 * as OpenSSH reads at most one buffer per channel per select() round.
 *
 * The cost is a read stop and start (two epoll_ctl calls in libuv) and one setImmediate per
 * `bytes` of bulk, nothing for a socket whose reads are short (a short read ends libuv's loop
 * by itself: no more bytes were there).
 */
import type net from 'node:net';

/**
 * Default bytes one socket delivers in one turn before it reads again after the poll. A turn
 * always takes at least one read, so with 256 KiB reads (`DEFAULT_OWNED_READ_BYTES`) this is one
 * read per turn.
 */
export const DEFAULT_TURN_READ_BYTES = 256 * 1024;

/**
 * For a socket read through `onread` (its callback's false stops the reads): returns what the
 * callback asks after each read of `n` bytes into a buffer of `capacity` bytes, which is false
 * once the reads of this readiness reached `bytes`. Then the socket resumes at the end of the
 * turn, unless someone paused it meanwhile (`socket.pause()`: the resume is theirs) or it is gone.
 * Only for a callback that otherwise says true: one that stops the reads itself (backpressure)
 * resumes them itself. `bytes` 0 never stops.
 */
export function turnReadBound(socket: net.Socket, bytes: number): (n: number, capacity: number) => boolean {
  if (bytes <= 0) return () => true;
  let taken = 0;
  const resume = (): void => {
    if (!socket.destroyed && !socket.isPaused()) socket.resume();
  };
  return (n, capacity) => {
    // A read that did not fill its buffer ends libuv's read loop: the next read of this socket
    // comes after a poll, in a later readiness.
    if (n < capacity) {
      taken = 0;
      return true;
    }
    taken += n;
    if (taken < bytes) return true;
    taken = 0;
    if (socket.isPaused()) return true; // paused by its owner meanwhile: its own resume restarts it
    setImmediate(resume);
    return false;
  };
}
