/**
 * A fleet of three hub nodes on one real Redis: a device on one node and a service on another
 * reach each other through a stream that meets on the device's node; when that node goes
 * away the device reconnects through its next gateway and new streams find it; a node that
 * died without cleaning up does not make requests hang.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import type { Hub } from '../src/hub/index.js';
import { DevstreamsError } from '../src/errors.js';
import { hasRedisServer, startRedis, type TestRedis } from './helpers/redis.js';
import { startNode, viaNodes } from './helpers/fleet.js';
import { DeviceClient, ServiceClient, echoDevice, nextMessage, until } from './helpers/hub.js';

const PREFIX = 'fleet-stream:';

describe.skipIf(!hasRedisServer)('hub fleet: streams across nodes', () => {
  let redis: TestRedis;
  let a: Hub;
  let b: Hub;
  let c: Hub;
  const clients: { close(): unknown }[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    [a, b, c] = await Promise.all([startNode(redis.url, PREFIX), startNode(redis.url, PREFIX), startNode(redis.url, PREFIX)]);
  });

  afterAll(async () => {
    for (const cl of clients) await cl.close();
    await Promise.all([a?.close(), b?.close(), c?.close()]);
    await redis?.stop();
  });

  async function echoOnce(service: ServiceClient, deviceId: string, text: string): Promise<void> {
    const s = await service.createStream(deviceId, 'echo', { responseTimeoutSeconds: 5 });
    const got = nextMessage(s.transport);
    s.transport.send([Buffer.from(text)]);
    expect((await got).toString()).toBe(text);
    s.transport.close();
  }

  it('a device on node A and a service on node B meet on A; bytes flow both ways', async () => {
    const rec = await a.registry.addDevice('sensor-1');
    const device = await echoDevice(viaNodes(a.deviceConnectionString(rec), a));
    clients.push(device);
    await until(() => a.connectedDevices === 1, 5000, 'device on A');
    const service = ServiceClient.fromConnectionString(viaNodes(b.policyConnectionString('service'), b));
    clients.push(service);
    const grant = await service.requestStream('sensor-1', 'echo');
    expect(grant.isAccepted).toBe(true);
    // The stream URL names the device's node (A), not the node asked (B).
    expect(new URL(grant.url).host).toBe(a.advertiseHost);
    const s = await service.createStream('sensor-1', 'echo');
    const big = Buffer.alloc(40_000, 7);
    const got = nextMessage(s.transport);
    s.transport.send([big]);
    expect((await got).equals(big)).toBe(true);
    expect(a.activeStreams).toBeGreaterThanOrEqual(1);
    expect(b.activeStreams).toBe(0); // bytes never cross nodes
    s.transport.close();
  });

  it('when the device node goes away the device moves to its next gateway and new streams find it', async () => {
    const rec = await c.registry.addDevice('sensor-2');
    // Gateways: X first, then C. B is where the service asks.
    const x = await startNode(redis.url, PREFIX);
    const device = DeviceClient.fromConnectionString(viaNodes(c.deviceConnectionString(rec), x, c), {
      backoff: { initialMs: 20, maxMs: 200 },
    });
    clients.push(device);
    device.on('streamRequest', (req) => {
      void req.accept().then(
        (t) => t.attach({ onMessage: (m) => t.send([m]), onDrain() {}, onClose() {} }),
        () => {},
      );
    });
    await device.open();
    await until(() => x.connectedDevices === 1, 5000, 'device on X');
    const service = ServiceClient.fromConnectionString(viaNodes(b.policyConnectionString('service'), b));
    clients.push(service);
    await echoOnce(service, 'sensor-2', 'before');
    await x.close();
    await until(() => c.connectedDevices >= 1 && device.connected, 10_000, 'device moved to C');
    const grant = await service.requestStream('sensor-2', 'echo');
    expect(new URL(grant.url).host).toBe(c.advertiseHost);
    await echoOnce(service, 'sensor-2', 'after');
  });

  it('a node that died without cleaning up: requests fail at once as offline and its entry is cleared', async () => {
    await a.registry.addDevice('ghosted');
    const r = new Redis(redis.url);
    try {
      await r.set(`${PREFIX}presence:ghosted`, 'dead-node', 'PX', 60_000);
      const service = ServiceClient.fromConnectionString(viaNodes(b.policyConnectionString('service'), b));
      clients.push(service);
      const t0 = Date.now();
      const err = await service.requestStream('ghosted', 'echo', { responseTimeoutSeconds: 30 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(DevstreamsError);
      expect((err as DevstreamsError).code).toBe('ERR_DEVICE_OFFLINE');
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(await r.get(`${PREFIX}presence:ghosted`)).toBeNull();
    } finally {
      r.disconnect();
    }
  });

  it('presence expires when a node stops refreshing it', async () => {
    const y = await startNode(redis.url, `${PREFIX}ttl:`, { redis: { url: redis.url, keyPrefix: `${PREFIX}ttl:`, presenceTtlMs: 300 } });
    const rec = await y.registry.addDevice('short-lived');
    const device = await echoDevice(viaNodes(y.deviceConnectionString(rec), y));
    clients.push(device);
    const r = new Redis(redis.url);
    try {
      await until(() => y.connectedDevices === 1, 5000, 'device on Y');
      // Refreshed while the socket lives: still there after several TTLs.
      await new Promise((res) => setTimeout(res, 900));
      expect(await r.get(`${PREFIX}ttl:presence:short-lived`)).toBe(y.nodeId);
      // Stop refreshing without telling Redis (as a crash would): the entry expires.
      (y as unknown as { fleet: { close(ids: string[]): Promise<void> } }).fleet.close([]);
      const end = Date.now() + 5000;
      let v: string | null = 'x';
      while (v !== null && Date.now() < end) {
        await new Promise((res) => setTimeout(res, 100));
        v = await r.get(`${PREFIX}ttl:presence:short-lived`);
      }
      expect(v).toBeNull();
    } finally {
      r.disconnect();
      await device.close();
      await y.close();
    }
  });
});
