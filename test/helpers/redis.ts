/**
 * Test helper: the fleet tests' private Redis (see bench/redis-server.ts). The fleet tests are
 * skipped, with this message, only when `redis-server` is not installed.
 */
import { hasRedisServer } from '../../bench/redis-server.js';

if (!hasRedisServer) {
  process.stderr.write('fleet tests skipped: redis-server is not installed (apt-get install -y redis-server)\n');
}

export { hasRedisServer, startRedis, type TestRedis } from '../../bench/redis-server.js';
