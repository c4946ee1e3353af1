/**
 * The process-wide buffers sockets read into (Node's `onread`) instead of a fresh Buffer per
 * read: the sealed stream sockets (src/transport) and the proxies' local sockets (src/proxy)
 * share them.
 */

/** Size of the shared read buffer for sealed stream sockets and the proxies' local sockets (four full records per read). */
export const DEFAULT_OWNED_READ_BYTES = 256 * 1024;

const sharedBuffers = new Map<number, Buffer>();

/**
 * The process-wide read buffer of `bytes`. One can serve every socket: a read's callback runs to
 * its end before libuv reads the next socket, and every reader copies what it keeps.
 */
export function sharedReadBuffer(bytes: number): Buffer {
  let b = sharedBuffers.get(bytes);
  if (!b) {
    b = Buffer.allocUnsafeSlow(bytes);
    sharedBuffers.set(bytes, b);
  }
  return b;
}
