/**
 * The message-pipe contract every upper layer is written against. A transport moves whole
 * messages (never a partial one) in order, reports backpressure, and closes once. The mux and
 * the record layer take a `Transport`; only the files in this folder know about sockets or ws.
 */

/** Callbacks a transport calls; set once with `Transport.attach`. */
export interface TransportHandlers {
  /** One whole message, in order. The buffer belongs to the receiver from now on. */
  onMessage(message: Buffer): void;
  /**
   * Optional: one whole message that arrived in pieces, as views in order. A transport calls
   * this instead of `onMessage` when the message spans its read buffers and the handler can take
   * pieces (the mux can), which saves copying them together; without it the transport joins them.
   */
  onMessageParts?(parts: Buffer[]): void;
  /**
   * Optional: true when the handler is done with every buffer it is given once `onMessage` /
   * `onMessageParts` returns (it copies what it keeps). A transport may then deliver views of a
   * read buffer it reuses for the next read, instead of a fresh buffer per read. Read at each
   * delivery, so a handler may borrow only in some phases by copying in the others.
   */
  borrowsReads?: boolean;
  /** Called after `send` returned false, once the transport can take more. */
  onDrain(): void;
  /** Called exactly once when the pipe is gone; `error` is absent on an orderly close. */
  onClose(error?: Error): void;
}

/** A bidirectional, ordered, message-preserving pipe with send backpressure. */
export interface Transport {
  /**
   * Sends one message made of `parts` (concatenated on the wire, so callers can pass a header
   * and a payload without copying them together). Returns false when the transport holds more
   * than its high-water mark: the caller should stop until `onDrain`. Sending after close is
   * a no-op that returns false.
   */
  send(parts: readonly Buffer[]): boolean;
  /** Installs the handlers. Messages that arrive before `attach` are held, not lost. */
  attach(handlers: TransportHandlers): void;
  /** Closes the pipe; `onClose` follows (with `error` when given). Idempotent. */
  close(error?: Error): void;
  /** Bytes handed to `send` and not yet written to the wire, for backpressure and metrics. */
  readonly bufferedAmount: number;
  /** Largest message the transport accepts, in bytes. */
  readonly maxMessageSize: number;
  /** True once closed or failed. */
  readonly closed: boolean;
  /**
   * Optional hint from the layer above: latency-sensitive traffic (a light channel's frames: a
   * keystroke, a request) is passing now. A transport that keeps queues may keep them short
   * for a while (the resumable layer's in-flight bound does), since everything queued ahead
   * of such a frame is wait. Cheap to call often: no I/O, no timer.
   */
  noteLatencySensitive?(): void;
}

/**
 * Default largest message: one mux batch (a full 64 KiB frame, its header and a few control
 * frames) sealed as one record, with room for the record's own header and tag.
 */
export const DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 + 2048;

/** Default send-buffer level above which `send` returns false. */
export const DEFAULT_TRANSPORT_HIGH_WATER = 256 * 1024;
