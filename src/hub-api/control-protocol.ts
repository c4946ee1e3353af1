/**
 * Messages on the device control socket (JSON text frames), shared by the hub and the device
 * SDK so that both sides agree on one definition. Pure data, no I/O: it sits beside `auth/` so
 * that the SDK never imports the hub.
 *
 * hub -> device: `streamRequest` (ring the device), `renewed` (a new token was accepted).
 * device -> hub: `streamResponse` (accept or reject, with a reason), `renew` (a fresh token
 * before the current one expires; the hub closes the socket with 4401 once the token expires).
 */
import { DevstreamsError } from '../errors.js';

/** Hub to device: a service asks for a stream; answer with a StreamResponseMessage. */
export interface StreamRequestMessage {
  type: 'streamRequest';
  requestId: string;
  streamName: string;
  streamId: string;
  /** Streaming endpoint URL the device connects to. */
  url: string;
  /** Single-use bearer token for the device side. */
  authorizationToken: string;
}

/** Hub to device: the renewed token was accepted, with its new expiry. */
export interface RenewedMessage {
  type: 'renewed';
  /** Expiry of the accepted token, unix seconds. */
  expiresAt: number;
}

/** Every message the hub sends on a control socket. */
export type HubToDevice = StreamRequestMessage | RenewedMessage;

/** Device to hub: accepts or rejects one stream request. */
export interface StreamResponseMessage {
  type: 'streamResponse';
  requestId: string;
  accept: boolean;
  reason?: string;
}

/** Device to hub: a fresh token before the current one expires. */
export interface RenewMessage {
  type: 'renew';
  token: string;
}

/** Every message a device sends on its control socket. */
export type DeviceToHub = StreamResponseMessage | RenewMessage;

/**
 * Header a device may send when it opens its control socket: its end-to-end public key
 * (base64, 32 bytes). The hub hands it to services that choose to trust the hub for device
 * identity; services that pin keys themselves never need it.
 */
export const DEVICE_KEY_HEADER = 'x-devstreams-device-key';

/** True when `value` is a base64 X25519 public key (32 bytes). */
export function isDeviceKey(value: unknown): value is string {
  return (
    typeof value === 'string' && value.length <= 64 && /^[A-Za-z0-9+/]+={0,2}$/.test(value) && Buffer.from(value, 'base64').length === 32
  );
}

/** WebSocket close codes the hub uses on control and stream sockets. */
export const CLOSE_CODES = {
  /** Token expired and was not renewed. */
  authExpired: 4401,
  /** Device removed or its key rotated. */
  authRevoked: 4403,
  /** Another control socket for the same device replaced this one. */
  replaced: 4409,
  /** The other side of a stream never came. */
  pairTimeout: 4408,
  /** The other side of a stream closed before pairing. */
  peerGone: 4410,
  /** Malformed control message. */
  protocol: 4400,
  /** Hub shutting down. */
  shutdown: 1001,
} as const;

/** Longest reject reason carried to the service, in characters. */
export const MAX_REASON_LENGTH = 256;

/** The JSON object in `text`, or undefined when it is not JSON or not an object. */
function parseJsonObject(text: string): Record<string, unknown> | undefined {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return undefined;
  }
  return m !== null && typeof m === 'object' ? (m as Record<string, unknown>) : undefined;
}

/** Parses a device->hub message; undefined when malformed. */
export function parseDeviceMessage(text: string): DeviceToHub | undefined {
  const o = parseJsonObject(text);
  if (!o) return undefined;
  if (o.type === 'streamResponse' && typeof o.requestId === 'string' && typeof o.accept === 'boolean') {
    const out: StreamResponseMessage = { type: 'streamResponse', requestId: o.requestId, accept: o.accept };
    if (typeof o.reason === 'string') out.reason = o.reason.slice(0, MAX_REASON_LENGTH);
    return out;
  }
  if (o.type === 'renew' && typeof o.token === 'string') return { type: 'renew', token: o.token };
  return undefined;
}

/**
 * Longest field of a streamRequest the device takes, in characters. The hub sends far less (a
 * 12-character request id, a stream name of at most 64, a stream URL, a token of a few hundred);
 * the device echoes the request id in its answer, so without a bound a hostile hub could make it
 * queue answers of any size.
 */
export const MAX_STREAM_REQUEST_FIELD: Readonly<Record<'requestId' | 'streamName' | 'streamId' | 'url' | 'authorizationToken', number>> = {
  requestId: 128,
  streamName: 256,
  streamId: 128,
  url: 2048,
  authorizationToken: 4096,
};

/**
 * Parses a hub->device message; undefined when malformed or unknown (a newer hub may send more).
 * Throws ERR_PROTOCOL_FRAME_TOO_LARGE for a streamRequest with a field past
 * MAX_STREAM_REQUEST_FIELD: no hub sends one, so the device treats it as a protocol error.
 */
export function parseHubMessage(text: string): HubToDevice | undefined {
  const o = parseJsonObject(text);
  if (!o) return undefined;
  if (
    o.type === 'streamRequest' &&
    typeof o.requestId === 'string' &&
    typeof o.streamName === 'string' &&
    typeof o.streamId === 'string' &&
    typeof o.url === 'string' &&
    typeof o.authorizationToken === 'string'
  ) {
    for (const [field, max] of Object.entries(MAX_STREAM_REQUEST_FIELD)) {
      const length = (o[field] as string).length;
      if (length > max)
        throw new DevstreamsError('ERR_PROTOCOL_FRAME_TOO_LARGE', `streamRequest ${field} of ${length} characters (at most ${max})`);
    }
    return {
      type: 'streamRequest',
      requestId: o.requestId,
      streamName: o.streamName,
      streamId: o.streamId,
      url: o.url,
      authorizationToken: o.authorizationToken,
    };
  }
  if (o.type === 'renewed' && typeof o.expiresAt === 'number') return { type: 'renewed', expiresAt: o.expiresAt };
  return undefined;
}
