/**
 * Stream routing between hub nodes over Redis pub/sub. Each node listens on its own channel
 * `node:<nodeId>`. The node that receives a stream request for a device connected elsewhere
 * publishes a `ring` to the device's node and waits for the `answer` on its own channel; the
 * device's node issues the stream (its own tokens and its own streaming URL, so both sides
 * meet there and stream bytes never cross nodes) and rings the device. PUBLISH reports how
 * many listeners got the message: zero means the node is gone, and the request fails at once
 * as ERR_DEVICE_OFFLINE rather than waiting for a timeout.
 */
import type { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { DevstreamsError, type ErrorCode } from '../../errors.js';
import type { StreamResponseBody } from '../stream-request.js';
import { guard } from './redis.js';

/** Extra wait for a forwarded answer beyond the device's response timeout (ms). */
export const DEFAULT_FORWARD_SLACK_MS = 2_000;

type BusMessage =
  | { t: 'ring'; id: string; from: string; deviceId: string; streamName: string; timeoutSeconds: number }
  | { t: 'answer'; id: string; body?: StreamResponseBody; code?: ErrorCode; message?: string }
  | { t: 'evict'; deviceId: string; by: string };

export interface NodeBusHandlers {
  /** Issues a stream to a device connected here and rings it. */
  ring(deviceId: string, streamName: string, timeoutSeconds: number): Promise<StreamResponseBody>;
  /** A device of ours reconnected at another node: close our (stale) socket. */
  evict(deviceId: string): void;
}

export interface NodeBusOptions {
  redis: Redis;
  subscriber: Redis;
  keyPrefix: string;
  nodeId: string;
  forwardSlackMs: number;
  log: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;
}

interface Waiting {
  resolve(body: StreamResponseBody): void;
  reject(err: DevstreamsError): void;
  timer: NodeJS.Timeout;
}

export class NodeBus {
  private readonly waiting = new Map<string, Waiting>();
  private handlers: NodeBusHandlers | undefined;
  private readonly channel: string;
  private readonly onMessage = (channel: string, text: string): void => this.handle(channel, text);

  constructor(private readonly o: NodeBusOptions) {
    this.channel = this.channelOf(o.nodeId);
  }

  private channelOf(nodeId: string): string {
    return `${this.o.keyPrefix}node:${nodeId}`;
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
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new DevstreamsError('ERR_STREAM_TIMEOUT', `device ${deviceId} did not answer within ${timeoutSeconds} s (via node ${nodeId})`));
      }, timeoutSeconds * 1000 + this.o.forwardSlackMs);
      this.waiting.set(id, { resolve, reject, timer });
    });
    let receivers: number;
    try {
      receivers = await guard(this.o.redis.publish(this.channelOf(nodeId), JSON.stringify(msg)));
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
    await guard(this.o.redis.publish(this.channelOf(nodeId), JSON.stringify(msg)));
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
    let msg: BusMessage;
    try {
      msg = JSON.parse(text) as BusMessage;
    } catch {
      return;
    }
    if (msg.t === 'answer') {
      const err = msg.code !== undefined ? new DevstreamsError(msg.code, msg.message ?? 'stream request failed at the device node') : undefined;
      this.settle(msg.id, msg.body, err);
      return;
    }
    if (msg.t === 'evict') {
      this.handlers?.evict(msg.deviceId);
      return;
    }
    if (msg.t === 'ring' && this.handlers) {
      const reply = (a: BusMessage): void => {
        this.o.redis.publish(this.channelOf(msg.from), JSON.stringify(a)).catch((err: unknown) => {
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
