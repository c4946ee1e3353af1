/** Test helpers for hub fleets: nodes on 127.0.0.1 sharing one Redis and one public host name. */
import { Hub, type HubStartOptions } from '../../src/hub/index.js';
import { formatConnectionString, parseConnectionString } from '../../src/auth/connection-string.js';

/** The name every node shares; tokens are scoped to it. Never dialled: clients use gateways. */
export const FLEET_HOST = 'hub.fleet.test';

export async function startNode(redisUrl: string, keyPrefix: string, o: Partial<HubStartOptions> = {}): Promise<Hub> {
  return Hub.start({ host: '127.0.0.1', port: 0, publicHost: FLEET_HOST, redis: { url: redisUrl, keyPrefix }, ...o });
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
