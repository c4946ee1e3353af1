/** Test helpers for hub fleets: nodes on 127.0.0.1 sharing one Redis and one public host name. */
import { Hub, type HubStartOptions } from '../../src/hub/index.js';
import { formatConnectionString, parseConnectionString } from '../../src/auth/connection-string.js';

/** The name every node shares; tokens are scoped to it. Never dialled: clients use gateways. */
export const FLEET_HOST = 'hub.fleet.test';

/** The fleet secret test nodes share (signs node-to-node messages; never in Redis). */
export const FLEET_SECRET = Buffer.alloc(32, 0x5e);

/** A node of the test fleet; `o.redis` given as options gets the shared secret unless it names its own. */
export async function startNode(redisUrl: string, keyPrefix: string, o: Partial<HubStartOptions> = {}): Promise<Hub> {
  const redis = typeof o.redis === 'object' ? { secret: FLEET_SECRET, ...o.redis } : { url: redisUrl, keyPrefix, secret: FLEET_SECRET };
  return Hub.start({ host: '127.0.0.1', port: 0, publicHost: FLEET_HOST, ...o, redis });
}

/** `host:port` of a node. */
export function addr(hub: Hub): string {
  return `127.0.0.1:${hub.port}`;
}

/** A connection string with GatewayHostName set to the given nodes (in order). */
export function viaNodes(cs: string, ...nodes: Hub[]): string {
  const parsed = parseConnectionString(cs);
  return formatConnectionString({ ...parsed, gatewayHostName: nodes.map(addr).join(',') });
}
