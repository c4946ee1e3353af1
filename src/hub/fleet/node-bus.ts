/**
 * Stream routing between hub nodes over Redis pub/sub. Each node listens on its own channel
 * `node:<nodeId>`. The node that receives a stream request for a device connected elsewhere
 * publishes a `ring` to the device's node and waits for the `answer` on its own channel; the
 * device's node issues the stream (its own tokens and its own streaming URL, so both sides
 * meet there and stream bytes never cross nodes) and rings the device. PUBLISH reports how
 * many listeners got the message: zero means the node is gone, and the request fails at once
 * as ERR_DEVICE_OFFLINE rather than waiting for a timeout.
 *
 * With a fleet secret (the same on every node, never stored in Redis) every message is signed:
 * `<base64url HMAC-SHA256(secret, channel "\n" payload)>.<payload>`, the payload a JSON message
 * with its send time. A node drops a message whose MAC does not verify (someone who can write to
 * Redis but has no secret), that is older than BUS_MAX_AGE_MS or from the future (a replay), a
 * ring whose id it has seen, and any message whose fields are not what the bus sends.
 */
import type { Redis } from 'ioredis';
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { DevstreamsError, type ErrorCode } from '../../errors.js';
import { isValidDeviceId } from '../../auth/connection-string.js';
import { MAX_STREAM_RESPONSE_TIMEOUT_SECONDS } from '../config.js';
import { STREAM_NAME_PATTERN, type StreamResponseBody } from '../stream-request.js';
import { guard } from './redis.js';

/** A signed bus message is refused when its send time is further than this from ours (ms): nodes' clocks must agree within it. */
export const BUS_MAX_AGE_MS = 30_000;
/** Ring ids remembered to refuse a replay within BUS_MAX_AGE_MS. */
const SEEN_RINGS_LIMIT = 65_536;
/** Shortest fleet secret, bytes. */
export const MIN_FLEET_SECRET_BYTES = 32;

/** Extra wait for a forwarded answer beyond the device's response timeout (ms). */
export const DEFAULT_FORWARD_SLACK_MS = 2_000;

type BusMessage =
  | { t: 'ring'; id: string; from: string; deviceId: string; streamName: string; timeoutSeconds: number }
  | { t: 'answer'; id: string; body?: StreamResponseBody; code?: ErrorCode; message?: string }
  | { t: 'evict'; deviceId: string; by: string };

/** What the bus calls on this node when another node asks it to act. */
export interface NodeBusHandlers {
  /** Issues a stream to a device connected here and rings it. */
  ring(deviceId: string, streamName: string, timeoutSeconds: number): Promise<StreamResponseBody>;
  /** A device of ours reconnected at another node: close our (stale) socket. */
  evict(deviceId: string): void;
}

/** Connections, channel naming, timing slack and the optional signing secret of a node bus. */
export interface NodeBusOptions {
  redis: Redis;
  subscriber: Redis;
  keyPrefix: string;
  nodeId: string;
  forwardSlackMs: number;
  /** Signs and checks every message (see above); without it messages are neither signed nor checked for a MAC. */
  secret?: Buffer;
  log: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
}

const ID = /^[A-Za-z0-9_-]{1,32}$/;
const NODE_ID = /^[A-Za-z0-9_.:-]{1,64}$/;
const CODE = /^ERR_[A-Z_]{1,60}$/;

const str = (v: unknown, max: number): v is string => typeof v === 'string' && v.length <= max;

/** Checks a stream answer body field by field (it goes back to a service as is). */
function isAnswerBody(b: unknown): b is StreamResponseBody {
  if (typeof b !== 'object' || b === null) return false;
  const o = b as Record<string, unknown>;
  return (
    typeof o.isAccepted === 'boolean' &&
    str(o.streamName, 64) &&
    str(o.url, 2048) &&
    str(o.authorizationToken, 256) &&
    str(o.streamId, 64) &&
    (o.reason === undefined || str(o.reason, 1024)) &&
    (o.devicePublicKey === undefined || str(o.devicePublicKey, 64))
  );
}

/** The message, when every field is what the bus sends; undefined otherwise. */
export function checkBusMessage(v: unknown): BusMessage | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const m = v as Record<string, unknown>;
  if (m.t === 'ring') {
    const ok =
      str(m.id, 32) &&
      ID.test(m.id) &&
      str(m.from, 64) &&
      NODE_ID.test(m.from) &&
      str(m.deviceId, 128) &&
      isValidDeviceId(m.deviceId) &&
      str(m.streamName, 64) &&
      STREAM_NAME_PATTERN.test(m.streamName) &&
      Number.isInteger(m.timeoutSeconds) &&
      (m.timeoutSeconds as number) >= 1 &&
      (m.timeoutSeconds as number) <= MAX_STREAM_RESPONSE_TIMEOUT_SECONDS;
    return ok ? (m as BusMessage) : undefined;
  }
  if (m.t === 'answer') {
    const ok =
      str(m.id, 32) &&
      ID.test(m.id) &&
      (m.body === undefined || isAnswerBody(m.body)) &&
      (m.code === undefined || (str(m.code, 64) && CODE.test(m.code))) &&
      (m.message === undefined || str(m.message, 1024));
    return ok ? (m as BusMessage) : undefined;
  }
  if (m.t === 'evict')
    return str(m.deviceId, 128) && isValidDeviceId(m.deviceId) && str(m.by, 64) && NODE_ID.test(m.by) ? (m as BusMessage) : undefined;
  return undefined;
}

interface Waiting {
  resolve(body: StreamResponseBody): void;
  reject(err: DevstreamsError): void;
  timer: NodeJS.Timeout;
}

/** Forwards stream requests to the device's node and answers those forwarded here (see the module comment). */
export class NodeBus {
  private readonly waiting = new Map<string, Waiting>();
  /** Ring ids seen recently, with when: a replayed ring is dropped. */
  private readonly seenRings = new Map<string, number>();
  private handlers: NodeBusHandlers | undefined;
  private readonly channel: string;
  /** Messages dropped because they did not verify or check out (logs carry the count). */
  dropped = 0;
  private readonly onMessage = (channel: string, text: string): void => this.handle(channel, text);

  constructor(private readonly o: NodeBusOptions) {
    this.channel = this.channelOf(o.nodeId);
  }

  private channelOf(nodeId: string): string {
    return `${this.o.keyPrefix}node:${nodeId}`;
  }

  private mac(channel: string, payload: string): Buffer {
    return createHmac('sha256', this.o.secret!).update(channel).update('\n').update(payload).digest();
  }

  /** The wire form of `msg` on `channel`: signed when there is a secret. */
  private encode(channel: string, msg: BusMessage): string {
    if (!this.o.secret) return JSON.stringify(msg);
    const payload = JSON.stringify({ ...msg, ts: Date.now() });
    return `${this.mac(channel, payload).toString('base64url')}.${payload}`;
  }

  /** The message in `text` when it verifies (MAC, age) and its fields check out; undefined otherwise. */
  private decode(channel: string, text: string): BusMessage | undefined {
    let payload = text;
    if (this.o.secret) {
      const dot = text.indexOf('.');
      if (dot <= 0) return undefined;
      const given = Buffer.from(text.slice(0, dot), 'base64url');
      payload = text.slice(dot + 1);
      const want = this.mac(channel, payload);
      if (given.length !== want.length || !timingSafeEqual(given, want)) return undefined;
    }
    let v: unknown;
    try {
      v = JSON.parse(payload);
    } catch {
      return undefined;
    }
    if (this.o.secret) {
      const ts = (v as { ts?: unknown } | null)?.ts;
      if (typeof ts !== 'number' || Math.abs(Date.now() - ts) > BUS_MAX_AGE_MS) return undefined;
    }
    return checkBusMessage(v);
  }

  /** False for a ring id seen within BUS_MAX_AGE_MS (a replay). */
  private firstRing(id: string): boolean {
    const now = Date.now();
    // Oldest first (insertion order): forget what is past the age limit, or over the count.
    for (const [k, at] of this.seenRings) {
      if (this.seenRings.size < SEEN_RINGS_LIMIT && now - at <= BUS_MAX_AGE_MS) break;
      this.seenRings.delete(k);
    }
    if (this.seenRings.has(id)) return false;
    this.seenRings.set(id, now);
    return true;
  }

  /** Starts listening on this node's channel. */
  async start(handlers: NodeBusHandlers): Promise<void> {
    this.handlers = handlers;
    this.o.subscriber.on('message', this.onMessage);
    await guard(this.o.subscriber.subscribe(this.channel));
  }

  /** Asks node `nodeId` to ring `deviceId`; resolves with the device's answer. */
  async forward(nodeId: string, deviceId: string, streamName: string, timeoutSeconds: number): Promise<StreamResponseBody> {
    const id = randomBytes(9).toString('base64url');
    const msg: BusMessage = { t: 'ring', id, from: this.o.nodeId, deviceId, streamName, timeoutSeconds };
    const answer = new Promise<StreamResponseBody>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.waiting.delete(id);
          reject(
            new DevstreamsError('ERR_STREAM_TIMEOUT', `device ${deviceId} did not answer within ${timeoutSeconds} s (via node ${nodeId})`),
          );
        },
        timeoutSeconds * 1000 + this.o.forwardSlackMs,
      );
      this.waiting.set(id, { resolve, reject, timer });
    });
    let receivers: number;
    try {
      const channel = this.channelOf(nodeId);
      receivers = await guard(this.o.redis.publish(channel, this.encode(channel, msg)));
    } catch (err) {
      this.settle(id, undefined, err as DevstreamsError);
      answer.catch(() => {});
      throw err;
    }
    if (receivers === 0) {
      const err = new DevstreamsError('ERR_DEVICE_OFFLINE', `device ${deviceId} is not connected (its node ${nodeId} is gone)`);
      this.settle(id, undefined, err);
      answer.catch(() => {});
      throw err;
    }
    return answer;
  }

  /** Tells node `nodeId` that `deviceId` reconnected here. */
  async evict(nodeId: string, deviceId: string): Promise<void> {
    const msg: BusMessage = { t: 'evict', deviceId, by: this.o.nodeId };
    const channel = this.channelOf(nodeId);
    await guard(this.o.redis.publish(channel, this.encode(channel, msg)));
  }

  private settle(id: string, body: StreamResponseBody | undefined, err?: DevstreamsError): void {
    const w = this.waiting.get(id);
    if (!w) return;
    this.waiting.delete(id);
    clearTimeout(w.timer);
    if (body) w.resolve(body);
    else w.reject(err ?? new DevstreamsError('ERR_HUB_UNAVAILABLE', 'hub node sent an empty answer'));
  }

  private handle(channel: string, text: string): void {
    if (channel !== this.channel) return;
    const msg = this.decode(channel, text);
    if (!msg) {
      // Whoever sends them decides how many: the first, then every 1,000th, is logged.
      if (++this.dropped === 1 || this.dropped % 1000 === 0)
        this.o.log('warn', 'dropped a fleet bus message that does not verify or check out', { channel, dropped: this.dropped });
      return;
    }
    if (msg.t === 'answer') {
      const err =
        msg.code !== undefined ? new DevstreamsError(msg.code, msg.message ?? 'stream request failed at the device node') : undefined;
      this.settle(msg.id, msg.body, err);
      return;
    }
    if (msg.t === 'evict') {
      this.handlers?.evict(msg.deviceId);
      return;
    }
    if (msg.t === 'ring' && this.handlers) {
      if (this.o.secret && !this.firstRing(msg.id)) return;
      const reply = (a: BusMessage): void => {
        const to = this.channelOf(msg.from);
        this.o.redis.publish(to, this.encode(to, a)).catch((err: unknown) => {
          this.o.log('warn', 'cannot send forwarded stream answer', { err: String(err) });
        });
      };
      this.handlers.ring(msg.deviceId, msg.streamName, msg.timeoutSeconds).then(
        (body) => reply({ t: 'answer', id: msg.id, body }),
        (err: unknown) => {
          const e = err instanceof DevstreamsError ? err : new DevstreamsError('ERR_INTERNAL', 'internal hub error');
          reply({ t: 'answer', id: msg.id, code: e.code, message: e.message });
        },
      );
    }
  }

  /** Stops listening; waiting requests fail with ERR_HUB_SHUTDOWN. */
  close(): void {
    this.o.subscriber.off('message', this.onMessage);
    for (const [id] of this.waiting) this.settle(id, undefined, new DevstreamsError('ERR_HUB_SHUTDOWN', 'hub is shutting down'));
  }
}
