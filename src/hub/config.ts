/**
 * Hub limits and defaults, in one place. Every named limit here is configurable through
 * `HubOptions`; `resolveHubConfig` fills defaults and rejects bad values before anything starts.
 */
import { DEFAULT_MAX_MESSAGE_SIZE } from '../transport/transport.js';
import { DEFAULT_CLOCK_SKEW_SECONDS } from '../auth/sas.js';
import { DevstreamsError } from '../errors.js';
import { DEFAULT_OWNED_READ_BYTES } from '../util/shared-read-buffer.js';
import { DEFAULT_TURN_READ_BYTES } from '../util/read-turn.js';
import { DEFAULT_IDLE_READ_BUFFER_MS } from '../util/owned-reads.js';

/** Default wait for a device's answer to a stream request (seconds); the request header can change it. */
export const DEFAULT_STREAM_RESPONSE_TIMEOUT_SECONDS = 60;
/** Upper bound on the timeout a caller may ask for (seconds). */
export const MAX_STREAM_RESPONSE_TIMEOUT_SECONDS = 300;
/** How long a stream token is valid, and how long an accepted stream waits for its sides (ms). */
export const DEFAULT_STREAM_TOKEN_TTL_MS = 30_000;
/** How long one paired side waits for the other at the streaming endpoint (ms). */
export const DEFAULT_STREAM_PAIR_TIMEOUT_MS = 30_000;
/**
 * Relay: above this many bytes queued towards one side, the hub stops reading the other side,
 * until that queue has been written out.
 */
export const DEFAULT_RELAY_HIGH_WATER = 256 * 1024;
/**
 * Bytes a plain stream socket reads at most at once (src/util/owned-reads.ts, ownReadsToKeep: a
 * small read into the process-wide shared buffer and copied, a large one into a fresh buffer and
 * relayed as it is); 0 reads the ordinary way, a fresh 64 KiB buffer per read. A quarter of the
 * read syscalls of 64 KiB reads under bulk load.
 */
export const DEFAULT_RELAY_READ_BYTES = DEFAULT_OWNED_READ_BYTES;
/**
 * A side that streamed holds a fresh read buffer (`relayReadBytes`) for its next read; once it has
 * read nothing for this long (ms) it gives it back, so a stream quiet after a burst does not keep
 * 256 KiB per side (0: it keeps it until its next read).
 */
export const DEFAULT_RELAY_IDLE_READ_BUFFER_MS = DEFAULT_IDLE_READ_BUFFER_MS;
/**
 * Bytes one plain stream socket delivers in one readiness before it reads again at the end of the
 * event-loop turn (src/util/read-turn.ts): a bulk stream does not hold other streams' small
 * messages behind megabytes relayed in one turn. 0: no bound.
 */
export const DEFAULT_RELAY_TURN_READ_BYTES = DEFAULT_TURN_READ_BYTES;
/** Largest stream frame the hub relays (one sealed record plus headroom; devstreams never fragments). */
export const DEFAULT_RELAY_MAX_MESSAGE = DEFAULT_MAX_MESSAGE_SIZE;
/** Largest control-socket message (JSON) in bytes. */
export const DEFAULT_CONTROL_MAX_MESSAGE = 16 * 1024;
/** Largest HTTP request body the hub reads (registry API), bytes. */
export const DEFAULT_MAX_BODY_BYTES = 16 * 1024;
/** Stream requests per second the hub accepts (token bucket rate); 0 disables the limit. */
export const DEFAULT_STREAM_RATE_PER_SECOND = 5000;
/** Token bucket size for stream requests. */
export const DEFAULT_STREAM_RATE_BURST = 5000;
/** Stream requests one device may have waiting for its answer at once. */
export const DEFAULT_MAX_PENDING_PER_DEVICE = 256;
/** Stream requests one service credential (policy: service, owner) may have waiting for device answers at once. */
export const DEFAULT_MAX_PENDING_PER_SERVICE = 1024;
/** A request's headers must arrive within this long of its first byte (ms); then 408. */
export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
/** A whole request (headers and body) must arrive within this long (ms); then 408. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/** A connection that sends no request within this long is closed (ms); with TLS, counted from the end of the handshake, which must also end within it. */
export const DEFAULT_IDLE_TIMEOUT_MS = 10_000;
/** Open connections at once; one more gets 503 ERR_HUB_UNAVAILABLE (plain) or is closed (TLS). Keep it below the process's file-descriptor limit. */
export const DEFAULT_MAX_CONNECTIONS = 10_000;
/** Refused credentials one client address may collect per window; past it, 429 without checking (0 = off). */
export const DEFAULT_REFUSALS_PER_ADDRESS = 30;
/** The window of the per-address refusal limit and of refusal log sampling (ms). */
export const DEFAULT_REFUSAL_WINDOW_MS = 10_000;
/** Refusal log lines per window; the rest are counted (metrics) and summed up in the next line. */
export const DEFAULT_REFUSAL_LOG_LINES = 10;
/** Bytes queued toward one device's control socket above which a renewal it sends closes the socket (it is not reading the answers). */
export const DEFAULT_CONTROL_SEND_LIMIT = 1024 * 1024;
/** Interval between control-socket pings; a socket silent for two intervals is dropped (ms). */
export const DEFAULT_CONTROL_PING_INTERVAL_MS = 30_000;

/** Hub limits and timeouts as given; every one left out takes its `DEFAULT_*` above. */
export interface HubOptions {
  /** Name tokens are scoped to and URLs are built from: `host` or `host:port`. Defaults to the listen address. */
  publicHost?: string;
  /** Scheme clients use: `ws` (plain) or `wss` (TLS). Defaults from whether TLS is configured. */
  publicTransport?: 'ws' | 'wss';
  streamResponseTimeoutSeconds?: number;
  streamTokenTtlMs?: number;
  streamPairTimeoutMs?: number;
  relayHighWater?: number;
  relayMaxMessage?: number;
  relayReadBytes?: number;
  relayIdleReadBufferMs?: number;
  relayTurnReadBytes?: number;
  controlMaxMessage?: number;
  maxBodyBytes?: number;
  streamRatePerSecond?: number;
  streamRateBurst?: number;
  maxPendingPerDevice?: number;
  maxPendingPerService?: number;
  controlPingIntervalMs?: number;
  clockSkewSeconds?: number;
  headersTimeoutMs?: number;
  requestTimeoutMs?: number;
  idleTimeoutMs?: number;
  maxConnections?: number;
  refusalsPerAddress?: number;
  refusalWindowMs?: number;
  refusalLogLines?: number;
  controlSendLimit?: number;
}

/** The hub's options after `resolveHubConfig`: every limit set and checked (the public host and scheme are resolved at listen time). */
export type HubConfig = Required<Omit<HubOptions, 'publicHost' | 'publicTransport'>>;

function positive(name: string, value: number, allowZero = false): number {
  if (!Number.isFinite(value) || value < 0 || (!allowZero && value === 0)) {
    throw new DevstreamsError('ERR_CONFIG', `hub option ${name} must be a ${allowZero ? 'non-negative' : 'positive'} number, got ${value}`);
  }
  return value;
}

/** Fills defaults and validates. */
export function resolveHubConfig(o: HubOptions): HubConfig {
  const c: HubConfig = {
    streamResponseTimeoutSeconds: positive(
      'streamResponseTimeoutSeconds',
      o.streamResponseTimeoutSeconds ?? DEFAULT_STREAM_RESPONSE_TIMEOUT_SECONDS,
    ),
    streamTokenTtlMs: positive('streamTokenTtlMs', o.streamTokenTtlMs ?? DEFAULT_STREAM_TOKEN_TTL_MS),
    streamPairTimeoutMs: positive('streamPairTimeoutMs', o.streamPairTimeoutMs ?? DEFAULT_STREAM_PAIR_TIMEOUT_MS),
    relayHighWater: positive('relayHighWater', o.relayHighWater ?? DEFAULT_RELAY_HIGH_WATER),
    relayMaxMessage: positive('relayMaxMessage', o.relayMaxMessage ?? DEFAULT_RELAY_MAX_MESSAGE),
    relayReadBytes: positive('relayReadBytes', o.relayReadBytes ?? DEFAULT_RELAY_READ_BYTES, true),
    relayIdleReadBufferMs: positive('relayIdleReadBufferMs', o.relayIdleReadBufferMs ?? DEFAULT_RELAY_IDLE_READ_BUFFER_MS, true),
    relayTurnReadBytes: positive('relayTurnReadBytes', o.relayTurnReadBytes ?? DEFAULT_RELAY_TURN_READ_BYTES, true),
    controlMaxMessage: positive('controlMaxMessage', o.controlMaxMessage ?? DEFAULT_CONTROL_MAX_MESSAGE),
    maxBodyBytes: positive('maxBodyBytes', o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES),
    streamRatePerSecond: positive('streamRatePerSecond', o.streamRatePerSecond ?? DEFAULT_STREAM_RATE_PER_SECOND, true),
    streamRateBurst: positive('streamRateBurst', o.streamRateBurst ?? DEFAULT_STREAM_RATE_BURST),
    maxPendingPerDevice: positive('maxPendingPerDevice', o.maxPendingPerDevice ?? DEFAULT_MAX_PENDING_PER_DEVICE),
    maxPendingPerService: positive('maxPendingPerService', o.maxPendingPerService ?? DEFAULT_MAX_PENDING_PER_SERVICE),
    controlPingIntervalMs: positive('controlPingIntervalMs', o.controlPingIntervalMs ?? DEFAULT_CONTROL_PING_INTERVAL_MS),
    clockSkewSeconds: positive('clockSkewSeconds', o.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS, true),
    headersTimeoutMs: positive('headersTimeoutMs', o.headersTimeoutMs ?? DEFAULT_HEADERS_TIMEOUT_MS),
    requestTimeoutMs: positive('requestTimeoutMs', o.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS),
    idleTimeoutMs: positive('idleTimeoutMs', o.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS),
    maxConnections: positive('maxConnections', o.maxConnections ?? DEFAULT_MAX_CONNECTIONS),
    refusalsPerAddress: positive('refusalsPerAddress', o.refusalsPerAddress ?? DEFAULT_REFUSALS_PER_ADDRESS, true),
    refusalWindowMs: positive('refusalWindowMs', o.refusalWindowMs ?? DEFAULT_REFUSAL_WINDOW_MS),
    refusalLogLines: positive('refusalLogLines', o.refusalLogLines ?? DEFAULT_REFUSAL_LOG_LINES, true),
    controlSendLimit: positive('controlSendLimit', o.controlSendLimit ?? DEFAULT_CONTROL_SEND_LIMIT),
  };
  // Node checks the header timeout only against a request's first byte, and a whole request includes its headers.
  if (c.requestTimeoutMs < c.headersTimeoutMs)
    throw new DevstreamsError('ERR_CONFIG', 'hub option requestTimeoutMs must be at least headersTimeoutMs');
  // Below the socket's own high-water mark (16 KiB) 'drain' may never fire for a paused side.
  if (c.relayHighWater < 16 * 1024) throw new DevstreamsError('ERR_CONFIG', 'hub option relayHighWater must be at least 16384 bytes');
  return c;
}
