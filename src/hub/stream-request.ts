/**
 * `POST /twins/{id}/streams/{name}`: checks the caller, the rate and the device, issues a stream
 * ticket (one single-use token per side), rings the device and answers with its decision in the
 * IoT Hub shape (body and `iothub-streaming-*` headers). In a fleet, a request for a device
 * connected to another node is forwarded to that node (`forward`), which issues the stream on
 * its own streaming endpoint (`ringLocal`).
 */
import type http from 'node:http';
import { randomFromPool } from '../util/random-pool.js';
import { DevstreamsError } from '../errors.js';
import type { HubTransport } from '../auth/connection-string.js';
import { MAX_STREAM_RESPONSE_TIMEOUT_SECONDS } from './config.js';
import type { HubContext } from './context.js';
import { TokenBucket } from './rate-limit.js';
import { authenticatePolicy } from './authenticate.js';
import { toHubError } from './http-errors.js';
import { sendJson } from './http-util.js';

/** Stream names: 1-64 of A-Z a-z 0-9 . _ - */
export const STREAM_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** Answer body of a stream request. */
export interface StreamResponseBody {
  isAccepted: boolean;
  streamName: string;
  url: string;
  authorizationToken: string;
  /** Reason the device gave when it rejected the stream. */
  reason?: string;
  streamId: string;
  /** The device's end-to-end public key as it announced it to the hub (accepted streams only). */
  devicePublicKey?: string;
}

/** What the stream-request route needs from the hub. */
export interface StreamRequestContext
  extends Pick<HubContext, 'config' | 'registry' | 'presence' | 'router' | 'control' | 'metrics' | 'log' | 'hostName'> {
  /** The hub-wide stream request rate. */
  bucket: TokenBucket;
  transport: HubTransport;
  /** `host:port` of this node's streaming endpoint, put in stream URLs. */
  advertiseHost(): string;
  /** Fleet routing: set when the node is one of several sharing presence. */
  fleet?: {
    nodeId: string;
    forward(nodeId: string, deviceId: string, streamName: string, timeoutSeconds: number): Promise<StreamResponseBody>;
  };
  /** Stream requests waiting for a device's answer, per service credential (policy name). */
  pendingByService: Map<string, number>;
  /** Rate buckets of service identities that have a rate of their own, by name. */
  serviceBuckets: Map<string, { rate: number; bucket: TokenBucket }>;
}

/** A service identity's own rate, when it has one: its bucket (made again when the rate changed). */
function serviceBucket(ctx: StreamRequestContext, name: string, rate: number | undefined): TokenBucket | undefined {
  if (rate === undefined) {
    ctx.serviceBuckets.delete(name);
    return undefined;
  }
  let b = ctx.serviceBuckets.get(name);
  if (!b || b.rate !== rate) {
    b = { rate, bucket: new TokenBucket(rate, rate) };
    ctx.serviceBuckets.set(name, b);
  }
  return b.bucket;
}

/** Serves one `POST /twins/{id}/streams/{name}`: caller, rate limits, pending limit, then the ring (here or at the device's node). */
export async function handleStreamRequest(
  ctx: StreamRequestContext,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  deviceId: string,
  streamName: string,
): Promise<void> {
  req.resume(); // a body, if any, is ignored
  const caller = await authenticatePolicy(req, ctx.registry, ctx.hostName(), ['service', 'owner'], ctx.config.clockSkewSeconds);
  const service = caller.kind === 'policy' ? caller.policy : 'unknown';
  const limits = caller.kind === 'policy' ? caller.limits : undefined;
  if (!STREAM_NAME_PATTERN.test(streamName))
    throw new DevstreamsError('ERR_BAD_REQUEST', 'stream name must be 1-64 characters of A-Z a-z 0-9 . _ -');
  let timeoutSeconds = ctx.config.streamResponseTimeoutSeconds;
  const th = req.headers['iothub-streaming-response-timeout-in-seconds'];
  if (th !== undefined) {
    const v = Number(th);
    if (typeof th !== 'string' || !/^[0-9]{1,4}$/.test(th) || v < 1 || v > MAX_STREAM_RESPONSE_TIMEOUT_SECONDS) {
      throw new DevstreamsError(
        'ERR_BAD_REQUEST',
        `iothub-streaming-response-timeout-in-seconds must be an integer from 1 to ${MAX_STREAM_RESPONSE_TIMEOUT_SECONDS}`,
      );
    }
    timeoutSeconds = v;
  }
  // A service identity's own rate first: one that exceeds it must not use up the hub's.
  if (serviceBucket(ctx, service, limits?.ratePerSecond)?.take() === false) {
    ctx.metrics.streamRequest('rate_limited');
    throw new DevstreamsError(
      'ERR_RATE_LIMITED',
      `too many stream requests from service ${service} (at most ${limits!.ratePerSecond}/s); retry later`,
    );
  }
  if (!ctx.bucket.take()) {
    ctx.metrics.streamRequest('rate_limited');
    throw new DevstreamsError('ERR_RATE_LIMITED', 'too many stream requests; retry later');
  }
  if (!ctx.registry.getDevice(deviceId)) await ctx.registry.refresh(true, deviceId); // added a moment ago?
  if (!ctx.registry.getDevice(deviceId)) {
    ctx.metrics.streamRequest('not_found');
    throw new DevstreamsError('ERR_DEVICE_NOT_FOUND', `device ${deviceId.slice(0, 128)} is not registered`);
  }
  // One caller must not hold every device's ringing slots (and their sockets) at once.
  const pending = ctx.pendingByService.get(service) ?? 0;
  const maxPending = limits?.maxPending ?? ctx.config.maxPendingPerService;
  if (pending >= maxPending) {
    ctx.metrics.streamRequest('rate_limited');
    throw new DevstreamsError(
      'ERR_RATE_LIMITED',
      `too many stream requests waiting for devices (at most ${maxPending} for credential ${service})`,
    );
  }
  ctx.pendingByService.set(service, pending + 1);
  let body: StreamResponseBody;
  try {
    body = await answerFromDevice(ctx, deviceId, streamName, timeoutSeconds);
  } finally {
    const left = (ctx.pendingByService.get(service) ?? 1) - 1;
    if (left > 0) ctx.pendingByService.set(service, left);
    else ctx.pendingByService.delete(service);
  }
  const token = body.authorizationToken;
  sendJson(res, 200, body, {
    'iothub-streaming-is-accepted': String(body.isAccepted),
    'iothub-streaming-url': body.url,
    'iothub-streaming-auth-token': token,
  });
}

/** Rings the device on this node, or forwards to the fleet node that holds it. */
async function answerFromDevice(
  ctx: StreamRequestContext,
  deviceId: string,
  streamName: string,
  timeoutSeconds: number,
): Promise<StreamResponseBody> {
  if (ctx.control.isConnected(deviceId)) return ringLocal(ctx, deviceId, streamName, timeoutSeconds);
  const node = ctx.fleet ? await ctx.presence.nodeOf(deviceId) : undefined;
  if (node === undefined || !ctx.fleet || node === ctx.fleet.nodeId) {
    ctx.metrics.streamRequest('offline');
    throw new DevstreamsError('ERR_DEVICE_OFFLINE', `device ${deviceId} is not connected`);
  }
  try {
    return await ctx.fleet.forward(node, deviceId, streamName, timeoutSeconds);
  } catch (err) {
    const e = toHubError(err);
    // The device's node counts the outcomes it produced; count here only what it could not.
    if (e.code === 'ERR_DEVICE_OFFLINE') {
      ctx.metrics.streamRequest('offline');
      await Promise.resolve(ctx.presence.setOffline(deviceId, node)).catch(() => {}); // its node is gone
    } else if (e.code === 'ERR_HUB_UNAVAILABLE' || e.code === 'ERR_HUB_SHUTDOWN') ctx.metrics.streamRequest('error');
    throw e;
  }
}

/**
 * Issues a stream to a device connected to this node: a ticket with one token per side, a URL
 * on this node's streaming endpoint, then the ring. Resolves with the answer body.
 */
export async function ringLocal(
  ctx: StreamRequestContext,
  deviceId: string,
  streamName: string,
  timeoutSeconds: number,
): Promise<StreamResponseBody> {
  // The id and both tokens from the pooled CSPRNG draw (each randomBytes call has a fixed cost).
  const random = randomFromPool(64);
  const streamId = random.subarray(0, 16).toString('base64url');
  const deviceToken = random.subarray(16, 40);
  const serviceToken = random.subarray(40, 64);
  const url = `${ctx.transport}://${ctx.advertiseHost()}/streams/${streamId}`;
  // The device may use its token from the ring on; neither may expire while it decides (the
  // answer may take the whole timeout): the tokens' life is set again once it has answered.
  await ctx.router.put({
    streamId,
    deviceId,
    streamName,
    deviceToken,
    serviceToken,
    expiresAt: Date.now() + timeoutSeconds * 1000 + ctx.config.streamTokenTtlMs,
  });
  let answer: Awaited<ReturnType<typeof ctx.control.ring>>;
  const rang = performance.now();
  try {
    answer = await ctx.control.ring(
      deviceId,
      { streamName, streamId, url, authorizationToken: deviceToken.toString('base64url') },
      timeoutSeconds * 1000,
    );
  } catch (err) {
    await ctx.router.drop(streamId);
    const e = toHubError(err);
    const outcome =
      e.code === 'ERR_STREAM_TIMEOUT'
        ? 'timeout'
        : e.code === 'ERR_DEVICE_OFFLINE'
          ? 'offline'
          : e.code === 'ERR_RATE_LIMITED'
            ? 'rate_limited'
            : 'error';
    ctx.metrics.streamRequest(outcome);
    ctx.metrics.ring(outcome, performance.now() - rang);
    throw e;
  }
  if (!answer.accept) await ctx.router.drop(streamId);
  else await ctx.router.extend(streamId, Date.now() + ctx.config.streamTokenTtlMs); // handed out now
  ctx.metrics.streamRequest(answer.accept ? 'accepted' : 'rejected');
  ctx.metrics.ring(answer.accept ? 'accepted' : 'rejected', performance.now() - rang);
  const body: StreamResponseBody = {
    isAccepted: answer.accept,
    streamName,
    url: answer.accept ? url : '',
    authorizationToken: answer.accept ? serviceToken.toString('base64url') : '',
    streamId,
  };
  if (answer.reason !== undefined) body.reason = answer.reason;
  const devicePublicKey = answer.accept ? ctx.control.devicePublicKey(deviceId) : undefined;
  if (devicePublicKey !== undefined) body.devicePublicKey = devicePublicKey;
  ctx.log.info({ deviceId, streamName, streamId, accepted: answer.accept }, 'stream request answered');
  return body;
}
