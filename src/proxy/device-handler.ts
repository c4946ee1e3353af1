/**
 * The device side of the tunnel: answers each channel the service opens by connecting to the
 * requested target, if and only if the allow list permits it, then bridges the two. A refused
 * or unreachable target is answered with a coded refusal the service side surfaces.
 */
import net from 'node:net';
import type { OpenRequest, Session } from '../mux/index.js';
import type { AllowList } from './allow-list.js';
import { type BridgeStats, bridge, connectErrorCode } from './bridge.js';

/** What the device's channel handler checks targets against, how long it waits for them, and what it reports. */
export interface DeviceHandlerOptions {
  allow: AllowList;
  /** How long a connect to a target may take. Default 10 s. */
  connectTimeoutMs?: number;
  /**
   * When the service sent data with its OPEN, how long the ACCEPT may wait for the target's first
   * answer to go with it, ms (the mux's AcceptOptions.holdMs): the service writes without waiting
   * for the ACCEPT, so a target that answers at once costs one message back, not two.
   * Default DEFAULT_ACCEPT_HOLD_MS; 0 answers at once.
   */
  acceptHoldMs?: number;
  /** Told about each channel's fate, for logs and metrics; a closed one with what it carried. */
  onChannel?(event: ChannelEvent): void;
}

/** One channel's fate on the device: connected to its target, refused, or closed with its stats. */
export interface ChannelEvent {
  target: string;
  outcome: 'connected' | 'refused' | 'unreachable' | 'not-allowed' | 'closed';
  error?: Error;
  stats?: BridgeStats;
}

/** Default of `connectTimeoutMs`: how long the device waits for a target to accept, ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/**
 * Default of `acceptHoldMs`. A target on the device's side answers within a millisecond or two
 * when it answers at once; the hold only delays the service's 'accepted' event (its channel-open
 * metric), never a byte.
 */
export const DEFAULT_ACCEPT_HOLD_MS = 5;

/** Serves every channel the peer opens on `session` from now on. */
export function serveDeviceChannels(session: Session, options: DeviceHandlerOptions): void {
  session.on('open', deviceChannelHandler(options));
}

/** The open handler itself, for `new Session(t, { onOpen })` so no early OPEN is missed. */
export function deviceChannelHandler(options: DeviceHandlerOptions): (request: OpenRequest) => void {
  return (request) => handleOpen(request, options);
}

function handleOpen(request: OpenRequest, options: DeviceHandlerOptions): void {
  const { host, port } = request.target;
  const label = `${host}:${port}`;
  if (!options.allow.allows(host, port)) {
    options.onChannel?.({ target: label, outcome: 'not-allowed' });
    // A name is matched as written, never resolved first (see AllowList): say so, since
    // "localhost:22 refused while 127.0.0.1:22 is allowed" looks like a bug otherwise.
    const hint =
      net.isIP(host.replace(/^\[|\]$/g, '')) === 0
        ? ` (names are matched as written, not resolved: allow ${label} itself, or ask for an allowed address)`
        : '';
    request.refuse('ERR_TARGET_NOT_ALLOWED', `${label} is not on the device's allow list${hint}`);
    return;
  }
  const socket = net.connect({ host, port, allowHalfOpen: true });
  const timer = setTimeout(
    () => socket.destroy(Object.assign(new Error(`connect to ${label} timed out`), { code: 'ETIMEDOUT' })),
    options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
  );
  const onConnectError = (err: NodeJS.ErrnoException): void => {
    clearTimeout(timer);
    const code = connectErrorCode(err);
    options.onChannel?.({ target: label, outcome: code === 'ERR_TARGET_REFUSED' ? 'refused' : 'unreachable', error: err });
    request.refuse(code, `${label}: ${err.code ?? err.message}`);
  };
  socket.once('error', onConnectError);
  socket.once('connect', () => {
    clearTimeout(timer);
    socket.off('error', onConnectError);
    const channel = request.accept({ holdMs: options.acceptHoldMs ?? DEFAULT_ACCEPT_HOLD_MS });
    // Bridged first: data the service sent behind its OPEN goes to the target before anything
    // is told about the channel (a log line costs more than the write). bridge() never ends
    // inside the call, so 'connected' still comes before 'closed'.
    bridge(socket, channel, { onDone: (error, stats) => options.onChannel?.({ target: label, outcome: 'closed', error, stats }) });
    options.onChannel?.({ target: label, outcome: 'connected' });
  });
}
