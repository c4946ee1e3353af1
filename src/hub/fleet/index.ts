/** A fleet of hub nodes sharing registry, presence and stream routing through Redis. */
export { Fleet, DEFAULT_PRESENCE_TTL_MS, PRESENCE_REFRESH_FRACTION, type FleetOptions, type FleetHooks } from './fleet.js';
export { RedisRegistry, type RedisRegistryOptions } from './redis-registry.js';
export { RedisPresenceStore } from './redis-presence.js';
export { NodeBus, DEFAULT_FORWARD_SLACK_MS } from './node-bus.js';
export {
  connectRedis,
  closeRedis,
  DEFAULT_REDIS_COMMAND_TIMEOUT_MS,
  DEFAULT_REDIS_CONNECT_TIMEOUT_MS,
  DEFAULT_REDIS_KEY_PREFIX,
} from './redis.js';
