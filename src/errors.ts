/**
 * Typed errors shared by every layer. Each carries a stable string `code` that users match on;
 * the codes never change meaning once released. Layers add their own codes here so that one
 * table lists every code a user can see.
 */

/** Every stable error code devstreams can surface. */
export type ErrorCode =
  // transport
  | 'ERR_TRANSPORT_CLOSED'
  | 'ERR_TRANSPORT_MESSAGE_TOO_LARGE'
  | 'ERR_TRANSPORT_HANDSHAKE'
  // mux protocol
  | 'ERR_PROTOCOL_FRAME'
  | 'ERR_PROTOCOL_FRAME_TOO_LARGE'
  | 'ERR_PROTOCOL_UNKNOWN_TYPE'
  | 'ERR_PROTOCOL_VERSION'
  | 'ERR_PROTOCOL_CHANNEL'
  | 'ERR_PROTOCOL_FLOW_CONTROL'
  | 'ERR_PROTOCOL_STATE'
  /** The peer made this side hold more answers (pongs, resets) than their bound, while not reading them. */
  | 'ERR_PROTOCOL_FLOOD'
  // mux session and channel lifecycle
  | 'ERR_KEEPALIVE_TIMEOUT'
  | 'ERR_SESSION_CLOSED'
  | 'ERR_SESSION_GOAWAY'
  | 'ERR_SESSION_LOST'
  | 'ERR_CHANNEL_RESET'
  | 'ERR_OPEN_TIMEOUT'
  | 'ERR_TOO_MANY_CHANNELS'
  | 'ERR_TARGET_NOT_ALLOWED'
  | 'ERR_TARGET_UNREACHABLE'
  | 'ERR_TARGET_REFUSED'
  | 'ERR_INTERNAL'
  | 'ERR_CONFIG'
  | 'ERR_USAGE'
  // record layer
  | 'ERR_RECORD_AUTH'
  | 'ERR_RECORD_SEQUENCE'
  | 'ERR_RECORD_TOO_LARGE'
  | 'ERR_HANDSHAKE_FAILED'
  | 'ERR_HANDSHAKE_TIMEOUT'
  | 'ERR_HANDSHAKE_PEER_KEY_CHANGED'
  | 'ERR_HANDSHAKE_PEER_UNKNOWN'
  // hub and sdk
  | 'ERR_AUTH_MISSING'
  | 'ERR_AUTH_INVALID'
  | 'ERR_AUTH_EXPIRED'
  | 'ERR_AUTH_SCOPE'
  | 'ERR_AUTH_TOKEN_REUSED'
  | 'ERR_DEVICE_NOT_FOUND'
  | 'ERR_DEVICE_OFFLINE'
  | 'ERR_STREAM_REJECTED'
  | 'ERR_STREAM_TIMEOUT'
  | 'ERR_RATE_LIMITED'
  | 'ERR_BAD_REQUEST'
  | 'ERR_REQUEST_TIMEOUT'
  | 'ERR_CONNECTION_STRING'
  | 'ERR_HUB_UNAVAILABLE'
  /** The hub's TLS certificate is not the one the connection string pins (HubCertSha256). */
  | 'ERR_HUB_CERT_MISMATCH'
  | 'ERR_NOT_FOUND'
  | 'ERR_METHOD_NOT_ALLOWED'
  | 'ERR_PAYLOAD_TOO_LARGE'
  | 'ERR_DEVICE_EXISTS'
  | 'ERR_DEVICE_REPLACED'
  | 'ERR_STREAM_PAIR_TIMEOUT'
  | 'ERR_STREAM_PEER_CLOSED'
  | 'ERR_REGISTRY'
  | 'ERR_HUB_SHUTDOWN'
  // resumption
  | 'ERR_RESUME_REFUSED';

/** Base class of every error devstreams throws or emits. */
export class DevstreamsError extends Error {
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = 'DevstreamsError';
  }
}

/** True when `err` is a devstreams error with the given code. */
export function hasCode(err: unknown, code: ErrorCode): boolean {
  return err instanceof DevstreamsError && err.code === code;
}
