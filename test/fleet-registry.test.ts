/**
 * A fleet's registry in Redis: a change made on one node (or with `devstreams registry
 * --redis`) is seen by the others at once, and revocations close sockets on every node. When
 * Redis is gone, requests that need it fail with 503 ERR_HUB_UNAVAILABLE and the CLI with one
 * line, quickly: nothing hangs.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Hub } from '../src/hub/index.js';
import { DevstreamsError } from '../src/errors.js';
import { createPolicyToken } from '../src/auth/sas.js';
import { hasRedisServer, startRedis, type TestRedis } from './helpers/redis.js';
import { FLEET_HOST, addr, startNode, viaNodes } from './helpers/fleet.js';
import { DeviceClient, ServiceClient, echoDevice, until } from './helpers/hub.js';

const MAIN = join(process.cwd(), 'dist/src/cli/main.js');

function cli(args: string[]): { code: number | null; stdout: string; stderr: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}

function errCode(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'resolved',
    (e: unknown) => (e instanceof DevstreamsError ? e.code : String(e)),
  );
}

describe.skipIf(!hasRedisServer)('hub fleet: registry in Redis', () => {
  let redis: TestRedis;
  let a: Hub;
  let b: Hub;
  const clients: { close(): unknown }[] = [];

  beforeAll(async () => {
    // The CLI runs from dist; build it when missing or older than the fleet code.
    if (!existsSync(join(process.cwd(), 'dist/src/hub/fleet/fleet.js')))
      spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit', timeout: 120_000 });
    redis = await startRedis();
    [a, b] = await Promise.all([startNode(redis.url, 'devstreams:'), startNode(redis.url, 'devstreams:')]);
  });

  afterAll(async () => {
    for (const c of clients) await c.close();
    await Promise.all([a?.close(), b?.close()]);
    await redis?.stop();
  });

  it('a device added on node A connects to node B at once; removal on B closes its socket on A', async () => {
    const ownerA = ServiceClient.fromConnectionString(viaNodes(a.policyConnectionString('owner'), a));
    const ownerB = ServiceClient.fromConnectionString(viaNodes(b.policyConnectionString('owner'), b));
    clients.push(ownerA, ownerB);
    const info = await ownerA.addDevice('cam-1');
    // No wait: B must accept the new device's credentials straight away.
    const onB = await echoDevice(viaNodes(info.connectionString!, b));
    clients.push(onB);
    expect((await ownerB.getDevice('cam-1')).deviceId).toBe('cam-1');
    await onB.close();
    const onA = await echoDevice(viaNodes(info.connectionString!, a));
    clients.push(onA);
    await until(() => a.connectedDevices === 1, 5000, 'device on A');
    const closed = new Promise<DevstreamsError | undefined>((resolve) => onA.once('disconnected', resolve));
    await ownerB.removeDevice('cam-1');
    const why = await closed;
    expect(why?.message).toContain('4403');
    await onA.close();
  });

  it('a key rotated on A closes the socket on B; the old string stops working everywhere', async () => {
    const rec = await a.registry.addDevice('cam-2');
    const cs = a.deviceConnectionString(rec);
    const dev = await echoDevice(viaNodes(cs, b));
    clients.push(dev);
    await until(() => b.connectedDevices >= 1, 5000, 'device on B');
    const closed = new Promise<DevstreamsError | undefined>((resolve) => dev.once('disconnected', resolve));
    const ownerA = ServiceClient.fromConnectionString(viaNodes(a.policyConnectionString('owner'), a));
    clients.push(ownerA);
    await ownerA.rotateDeviceKey('cam-2');
    expect((await closed)?.message).toContain('4403');
    await dev.close();
    const stale = DeviceClient.fromConnectionString(viaNodes(cs, b));
    expect(await errCode(stale.open())).toBe('ERR_AUTH_INVALID');
  });

  it('devstreams registry --redis adds devices the running fleet accepts at once', async () => {
    const r = cli(['registry', 'add', 'cli-dev', '--redis', redis.url]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const cs = r.stdout.trim();
    expect(cs).toContain(`HostName=${FLEET_HOST}`);
    const dev = await echoDevice(viaNodes(cs, a));
    clients.push(dev);
    expect(cli(['registry', 'list', '--redis', redis.url]).stdout).toMatch(/^cli-dev\s/m);
    const svc = cli(['registry', 'service-string', '--redis', redis.url]).stdout.trim();
    expect(svc).toBe(a.policyConnectionString('service'));
    await dev.close();
  });
});

describe.skipIf(!hasRedisServer)('hub fleet: Redis unavailable', () => {
  it('answers 503 ERR_HUB_UNAVAILABLE quickly, the CLI fails with one line, and a node does not start', async () => {
    const redis = await startRedis();
    const a = await startNode(redis.url, 'down:', { redis: { url: redis.url, keyPrefix: 'down:', commandTimeoutMs: 500 } });
    const b = await startNode(redis.url, 'down:', { redis: { url: redis.url, keyPrefix: 'down:', commandTimeoutMs: 500 } });
    const dev = await a.registry.addDevice('far-away');
    const device = await echoDevice(viaNodes(a.deviceConnectionString(dev), a));
    try {
      await until(() => a.connectedDevices === 1, 5000, 'device on A');
      await redis.stop();
      const token = createPolicyToken(FLEET_HOST, 'owner', a.registry.policyKey('owner')!);
      // A stream request on B for a device on A needs presence: 503.
      let t0 = Date.now();
      const res = await fetch(`http://${addr(b)}/twins/far-away/streams/echo`, { method: 'POST', headers: { authorization: token } });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { code: string }).code).toBe('ERR_HUB_UNAVAILABLE');
      expect(Date.now() - t0).toBeLessThan(4000);
      // A bad token is a 401 whatever Redis does: the re-read that fails is not the answer.
      const forged = createPolicyToken(FLEET_HOST, 'service', Buffer.alloc(32, 7).toString('base64'));
      const bad = await fetch(`http://${addr(b)}/twins/far-away/streams/echo`, { method: 'POST', headers: { authorization: forged } });
      expect([bad.status, ((await bad.json()) as { code: string }).code]).toEqual([401, 'ERR_AUTH_INVALID']);
      // A registry write needs Redis: 503.
      t0 = Date.now();
      const put = await fetch(`http://${addr(b)}/devices/new-one`, {
        method: 'PUT',
        headers: { authorization: token, 'content-type': 'application/json' },
        body: '{}',
      });
      expect(put.status).toBe(503);
      expect(((await put.json()) as { code: string }).code).toBe('ERR_HUB_UNAVAILABLE');
      expect(Date.now() - t0).toBeLessThan(4000);
      // The CLI: one line, non-zero exit, within the connect timeout.
      if (existsSync(MAIN)) {
        const r = cli(['registry', 'list', '--redis', redis.url]);
        expect(r.code).toBe(1);
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).toContain('ERR_HUB_UNAVAILABLE');
        expect(r.ms).toBeLessThan(8000);
      }
      // A node cannot start without its Redis.
      t0 = Date.now();
      expect(await errCode(startNode(redis.url, 'down:'))).toBe('ERR_HUB_UNAVAILABLE');
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      await device.close();
      await Promise.all([a.close(), b.close()]);
      await redis.stop();
    }
  });
});
