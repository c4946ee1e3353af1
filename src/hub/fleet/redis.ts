/**
 * Redis connections for a hub fleet, with the limits that keep a missing Redis from hanging
 * anything: every command times out, nothing is queued while disconnected (commands fail at
 * once), and every failure becomes `ERR_HUB_UNAVAILABLE`. Defaults live here.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { DevstreamsError } from '../../errors.js';

/** A Redis command that has not answered after this long fails (ms). */
export const DEFAULT_REDIS_COMMAND_TIMEOUT_MS = 2_000;
/** Connecting to Redis gives up after this long (ms). */
export const DEFAULT_REDIS_CONNECT_TIMEOUT_MS = 2_000;
/** Longest wait between reconnect attempts of a hub node (ms); the CLI does not retry. */
export const REDIS_RECONNECT_MAX_DELAY_MS = 2_000;
/** Prefix of every key and channel the fleet uses, so one Redis can serve other things too. */
export const DEFAULT_REDIS_KEY_PREFIX = 'devstreams:';

/** How `connectRedis` connects: reconnect or fail, timeouts, a private CA, and an error callback. */
export interface RedisConnectOptions {
  /** Keep reconnecting after the first connection (hub nodes); the CLI fails instead. */
  reconnect: boolean;
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Called on connection errors (rate them yourself); default: ignored. */
  onError?: (err: Error) => void;
  /** CA certificate(s) (PEM) for a `rediss://` server with a private CA. */
  ca?: string | Buffer;
}

/** Wraps any Redis failure as the stable code the hub answers with (HTTP 503). */
export function unavailable(err: unknown, what = 'Redis'): DevstreamsError {
  if (err instanceof DevstreamsError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new DevstreamsError('ERR_HUB_UNAVAILABLE', `${what} unavailable: ${msg}`, { cause: err });
}

/** Runs a Redis call, turning its failure into ERR_HUB_UNAVAILABLE. */
export async function guard<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw unavailable(err);
  }
}

/** Hides credentials in a Redis URL for messages. */
export function safeUrl(url: string): string {
  return url.replace(/\/\/[^@/]*@/, '//***@');
}

/** Opens a connection and resolves once it is ready; rejects with ERR_HUB_UNAVAILABLE. */
export async function connectRedis(url: string, o: RedisConnectOptions): Promise<Redis> {
  if (!/^rediss?:\/\//.test(url))
    throw new DevstreamsError('ERR_CONFIG', `Redis URL must start with redis:// or rediss://, got "${safeUrl(url).slice(0, 80)}"`);
  const connectTimeout = o.connectTimeoutMs ?? DEFAULT_REDIS_CONNECT_TIMEOUT_MS;
  const opts: RedisOptions = {
    lazyConnect: true,
    connectTimeout,
    commandTimeout: o.commandTimeoutMs ?? DEFAULT_REDIS_COMMAND_TIMEOUT_MS,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: o.reconnect ? (n: number) => Math.min(50 * n, REDIS_RECONNECT_MAX_DELAY_MS) : () => null,
  };
  // rediss:// turns TLS on (ioredis); a private CA comes on top. A password comes in the URL.
  if (o.ca !== undefined) {
    if (!url.startsWith('rediss://')) throw new DevstreamsError('ERR_CONFIG', 'a Redis CA certificate needs a rediss:// URL');
    opts.tls = { ca: o.ca };
  }
  const redis = new Redis(url, opts);
  redis.on('error', (err: Error) => o.onError?.(err));
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      redis.connect(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no connection within ${connectTimeout} ms`)), connectTimeout + 100);
      }),
    ]);
  } catch (err) {
    redis.disconnect();
    throw unavailable(err, `Redis at ${safeUrl(url)}`);
  } finally {
    if (timer) clearTimeout(timer);
  }
  return redis;
}

/** Closes a connection politely, or at once when Redis does not answer. */
export async function closeRedis(redis: Redis): Promise<void> {
  try {
    if (redis.status === 'ready') {
      await redis.quit();
      return;
    }
  } catch {
    // fall through
  }
  redis.disconnect();
}
