/**
 * One hub node's membership in a fleet: two Redis connections (commands, and a subscriber for
 * registry changes and this node's channel), the Redis registry, Redis presence with its
 * refresh loop, and the node bus that routes stream requests to the device's node.
 * Limits and their defaults are the constants below and in `redis.ts`.
 */
import type { Redis } from 'ioredis';
import { DevstreamsError } from '../../errors.js';
import type { StreamResponseBody } from '../stream-request.js';
import { RedisRegistry } from './redis-registry.js';
import { RedisPresenceStore } from './redis-presence.js';
import { NodeBus, DEFAULT_FORWARD_SLACK_MS, MIN_FLEET_SECRET_BYTES } from './node-bus.js';
import { closeRedis, connectRedis, DEFAULT_REDIS_KEY_PREFIX, safeUrl } from './redis.js';

/** A device's presence entry expires this long after its node last refreshed it (ms). */
export const DEFAULT_PRESENCE_TTL_MS = 30_000;
/** Fraction of the TTL after which a node refreshes its devices' entries. */
export const PRESENCE_REFRESH_FRACTION = 1 / 3;
/** At most one Redis connection error is logged per this interval (ms). */
const ERROR_LOG_INTERVAL_MS = 10_000;

/** How a hub node joins a fleet: Redis URL, key prefix, presence TTL, the bus's signing secret and timeouts. */
export interface FleetOptions {
  /** `redis://[user:pass@]host:port[/db]` or `rediss://...`. */
  url: string;
  /** Prefix of every key and channel (default `devstreams:`). */
  keyPrefix?: string;
  presenceTtlMs?: number;
  /** Redis command timeout (ms, default 2000). */
  commandTimeoutMs?: number;
  /** Extra wait for a forwarded stream answer (ms, default 2000). */
  forwardSlackMs?: number;
  /**
   * The fleet secret: the same on every node and never stored in Redis (at least 32 bytes).
   * Node-to-node messages are signed with it, so writing to Redis is not enough to make a node
   * ring a device or evict one. Without it they are not signed (a warning at start).
   */
  secret?: Buffer;
  /** CA certificate(s) (PEM) for a `rediss://` Redis with a private CA. */
  redisCa?: string | Buffer;
}

/** What the fleet needs from the node's control plane. */
export interface FleetHooks {
  deviceIds(): string[];
  /** Closes the local control socket of a device that reconnected elsewhere. */
  evict(deviceId: string): void;
  ring(deviceId: string, streamName: string, timeoutSeconds: number): Promise<StreamResponseBody>;
}

type Log = (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void;

/** One node's membership in a fleet (see the module comment); `Fleet.connect` builds it, `start` begins its refresh loop. */
export class Fleet {
  private timer: NodeJS.Timeout | undefined;
  private hooks: FleetHooks | undefined;

  private constructor(
    readonly nodeId: string,
    private readonly redis: Redis,
    private readonly subscriber: Redis,
    readonly registry: RedisRegistry,
    readonly presence: RedisPresenceStore,
    readonly bus: NodeBus,
    private readonly ttlMs: number,
    private readonly log: Log,
  ) {}

  /** Connects to Redis and loads the registry; rejects with ERR_HUB_UNAVAILABLE when Redis is not there. */
  static async connect(o: FleetOptions, nodeId: string, log: Log): Promise<Fleet> {
    const keyPrefix = o.keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX;
    const ttlMs = o.presenceTtlMs ?? DEFAULT_PRESENCE_TTL_MS;
    if (!Number.isFinite(ttlMs) || ttlMs < 100) throw new DevstreamsError('ERR_CONFIG', `presenceTtlMs must be at least 100, got ${ttlMs}`);
    let lastLog = 0;
    const onError = (err: Error): void => {
      const now = Date.now();
      if (now - lastLog < ERROR_LOG_INTERVAL_MS) return;
      lastLog = now;
      log('warn', 'Redis connection error', { redis: safeUrl(o.url), err: err.message });
    };
    if (o.secret !== undefined && o.secret.length < MIN_FLEET_SECRET_BYTES)
      throw new DevstreamsError('ERR_CONFIG', `the fleet secret must be at least ${MIN_FLEET_SECRET_BYTES} bytes`);
    if (o.secret === undefined)
      log(
        'warn',
        'no fleet secret: messages between hub nodes are not signed, so whoever can write to Redis can make nodes ring and evict devices',
      );
    const common = {
      reconnect: true,
      onError,
      commandTimeoutMs: o.commandTimeoutMs,
      ca: o.redisCa,
    };
    const redis = await connectRedis(o.url, common);
    let subscriber: Redis;
    try {
      subscriber = await connectRedis(o.url, common);
    } catch (err) {
      await closeRedis(redis);
      throw err;
    }
    try {
      const registry = await RedisRegistry.open({ redis, subscriber, keyPrefix });
      let fleet: Fleet | undefined;
      const presence = new RedisPresenceStore({
        redis,
        keyPrefix,
        presenceTtlMs: ttlMs,
        onMoved: (deviceId, from) => fleet?.moved(deviceId, from),
      });
      const bus = new NodeBus({
        redis,
        subscriber,
        keyPrefix,
        nodeId,
        forwardSlackMs: o.forwardSlackMs ?? DEFAULT_FORWARD_SLACK_MS,
        log,
        secret: o.secret,
      });
      fleet = new Fleet(nodeId, redis, subscriber, registry, presence, bus, ttlMs, log);
      return fleet;
    } catch (err) {
      await Promise.all([closeRedis(redis), closeRedis(subscriber)]);
      throw err;
    }
  }

  /** Starts routing and the presence refresh loop. */
  async start(hooks: FleetHooks): Promise<void> {
    this.hooks = hooks;
    await this.bus.start(hooks);
    this.timer = setInterval(() => void this.keepAlive(), Math.max(50, Math.floor(this.ttlMs * PRESENCE_REFRESH_FRACTION)));
    this.timer.unref();
  }

  private moved(deviceId: string, fromNode: string): void {
    this.bus.evict(fromNode, deviceId).catch(() => {});
  }

  private async keepAlive(): Promise<void> {
    if (!this.hooks) return;
    try {
      const movedAway = await this.presence.keepAlive(this.hooks.deviceIds(), this.nodeId);
      for (const id of movedAway) this.hooks.evict(id);
    } catch (err) {
      this.log('warn', 'cannot refresh device presence', { err: (err as Error).message });
    }
  }

  /** Forwards a stream request to the device's node. */
  forward(nodeId: string, deviceId: string, streamName: string, timeoutSeconds: number): Promise<StreamResponseBody> {
    return this.bus.forward(nodeId, deviceId, streamName, timeoutSeconds);
  }

  /** Leaves the fleet: removes this node's presence entries, closes the connections. */
  async close(deviceIds: readonly string[]): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.bus.close();
    await this.presence.leave(deviceIds, this.nodeId).catch(() => {});
    await Promise.all([closeRedis(this.redis), closeRedis(this.subscriber)]);
  }
}
