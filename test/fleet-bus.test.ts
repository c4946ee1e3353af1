// The fleet trusts Redis less: node-to-node messages are signed with a fleet secret that is not
// in Redis, so writing to Redis is not enough to make a node ring or evict a device (forged,
// replayed and malformed messages are dropped); and the fleet's Redis can have a password and TLS.
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { createSasToken, deviceResource, hubResource, nowSeconds } from '../src/auth/index.js';
import { checkBusMessage } from '../src/hub/fleet/node-bus.js';
import type { Hub } from '../src/hub/index.js';
import { freePort } from '../bench/procs.js';
import { hasRedisServer, startRedis } from './helpers/redis.js';
import { FLEET_HOST, FLEET_SECRET, addr, startNode } from './helpers/fleet.js';

const stops: Array<() => unknown> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

const PREFIX = 'bus:';

/** A device on `node`'s control socket that never answers; counts the stream requests it gets. */
async function countingDevice(node: Hub, id: string): Promise<() => number> {
  const rec = await node.registry.addDevice(id);
  const token = createSasToken(deviceResource(FLEET_HOST, id), rec.key, nowSeconds() + 600);
  const ws = new WebSocket(`ws://${addr(node)}/devices/${id}/control`, { headers: { authorization: token } });
  ws.on('error', () => {});
  stops.push(() => ws.terminate());
  let rings = 0;
  ws.on('message', (d: Buffer) => {
    if ((JSON.parse(d.toString()) as { type: string }).type === 'streamRequest') rings++;
  });
  await new Promise<void>((r) => ws.once('open', () => r()));
  return () => rings;
}

function logger(lines: string[]): { info(): void; error(): void; warn(o: object, m?: string): void } {
  return { info() {}, error() {}, warn: (_o, m) => lines.push(m ?? '') };
}

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('fleet bus messages: field checks', () => {
  it('checkBusMessage takes what the bus sends and nothing else', () => {
    expect(checkBusMessage({ t: 'ring', id: 'abc', from: 'n1', deviceId: 'dev-1', streamName: 'ssh', timeoutSeconds: 60 })).toBeDefined();
    expect(checkBusMessage({ t: 'evict', deviceId: 'dev-1', by: 'n2' })).toBeDefined();
    expect(checkBusMessage({ t: 'answer', id: 'abc', code: 'ERR_DEVICE_OFFLINE', message: 'x' })).toBeDefined();
    expect(
      checkBusMessage({
        t: 'answer',
        id: 'abc',
        body: { isAccepted: true, streamName: 's', url: 'ws://h/streams/x', authorizationToken: 't', streamId: 'x' },
      }),
    ).toBeDefined();
    for (const bad of [
      null,
      'ring',
      { t: 'ring', id: 'abc', from: 'n1', deviceId: 'bad id', streamName: 'ssh', timeoutSeconds: 60 },
      { t: 'ring', id: 'abc', from: 'n1', deviceId: 'd', streamName: 'ssh', timeoutSeconds: 1e9 },
      { t: 'ring', id: 'a'.repeat(100), from: 'n1', deviceId: 'd', streamName: 'ssh', timeoutSeconds: 5 },
      { t: 'answer', id: 'abc', code: 'not a code' },
      { t: 'answer', id: 'abc', body: { isAccepted: 'yes' } },
      { t: 'evict', deviceId: 'd', by: 'n 2' },
      { t: 'other' },
    ]) {
      expect(checkBusMessage(bad), JSON.stringify(bad)).toBeUndefined();
    }
  });
});

describe.skipIf(!hasRedisServer)('fleet bus messages: signed with the fleet secret', () => {
  it('a ring forged by someone who can write to Redis, or replayed, or from a node with another secret, never reaches the device', async () => {
    const redis = await startRedis();
    stops.push(() => redis.stop());
    const linesA: string[] = [];
    const a = await startNode(redis.url, PREFIX, { logger: logger(linesA) });
    const b = await startNode(redis.url, PREFIX);
    stops.push(() => Promise.all([a.close(), b.close()]));
    const rings = await countingDevice(a, 'dev-bus');
    const service = createSasToken(hubResource(FLEET_HOST), a.registry.policyKey('service')!, nowSeconds() + 600, 'service');

    // A legit request entering at B reaches the device at A (and is recorded off the wire).
    const spy = new Redis(redis.url);
    stops.push(() => spy.disconnect());
    const seen: Array<{ channel: string; text: string }> = [];
    await spy.psubscribe(`${PREFIX}node:*`);
    spy.on('pmessage', (_p: string, channel: string, text: string) => seen.push({ channel, text }));
    const legit = await fetch(`http://${addr(b)}/twins/dev-bus/streams/ssh`, {
      method: 'POST',
      headers: { authorization: service, 'iothub-streaming-response-timeout-in-seconds': '1' },
    });
    expect(((await legit.json()) as { code: string }).code).toBe('ERR_STREAM_TIMEOUT');
    expect(rings()).toBe(1);
    const ring = seen.find((m) => m.text.includes('"t":"ring"'))!;
    expect(ring.text).toMatch(/^[A-Za-z0-9_-]{43}\.\{/); // MAC.payload

    // Replayed as is: dropped (seen id). Forged unsigned, or signed with another secret: dropped.
    const pub = new Redis(redis.url);
    stops.push(() => pub.disconnect());
    await pub.publish(ring.channel, ring.text);
    const forged = JSON.stringify({
      t: 'ring',
      id: 'forged1',
      from: 'evil',
      deviceId: 'dev-bus',
      streamName: 'ssh',
      timeoutSeconds: 5,
      ts: Date.now(),
    });
    await pub.publish(ring.channel, forged);
    const otherMac = createHmac('sha256', Buffer.alloc(32, 1)).update(ring.channel).update('\n').update(forged).digest('base64url');
    await pub.publish(ring.channel, `${otherMac}.${forged}`);
    // Signed with the right secret but stale: dropped too.
    const stale = JSON.stringify({
      t: 'ring',
      id: 'stale1',
      from: 'evil',
      deviceId: 'dev-bus',
      streamName: 'ssh',
      timeoutSeconds: 5,
      ts: Date.now() - 60_000,
    });
    await pub.publish(
      ring.channel,
      `${createHmac('sha256', FLEET_SECRET).update(ring.channel).update('\n').update(stale).digest('base64url')}.${stale}`,
    );
    await settle(300); // kept: a ring that should not happen has no event to wait for
    expect(rings()).toBe(1);
    expect(linesA).toContain('dropped a fleet bus message that does not verify or check out');

    // A node with another secret cannot get the device rung either: its request times out.
    const c = await startNode(redis.url, PREFIX, { redis: { url: redis.url, keyPrefix: PREFIX, secret: Buffer.alloc(32, 2) } });
    stops.push(() => c.close());
    const viaC = await fetch(`http://${addr(c)}/twins/dev-bus/streams/ssh`, {
      method: 'POST',
      headers: { authorization: service, 'iothub-streaming-response-timeout-in-seconds': '1' },
    });
    expect(((await viaC.json()) as { code: string }).code).toBe('ERR_STREAM_TIMEOUT');
    expect(rings()).toBe(1);
  });
});

describe.skipIf(!hasRedisServer)("the fleet's Redis with a password and with TLS", () => {
  it('a password in the URL is used; without it a node does not start (ERR_HUB_UNAVAILABLE)', async () => {
    const port = await freePort();
    const redis = await startRedis(port, ['--requirepass', 's3cret-pw']);
    stops.push(() => redis.stop());
    const node = await startNode(`redis://:s3cret-pw@127.0.0.1:${port}`, PREFIX);
    stops.push(() => node.close());
    expect((await node.registry.addDevice('pw-dev')).deviceId).toBe('pw-dev');
    await expect(startNode(`redis://127.0.0.1:${port}`, PREFIX)).rejects.toMatchObject({ code: 'ERR_HUB_UNAVAILABLE' });
  });

  it("rediss:// with the server's CA works; without the CA the node does not start", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'devstreams-redis-tls-'));
    stops.push(() => rmSync(dir, { recursive: true, force: true }));
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    const port = await freePort();
    // Port 0: no plaintext listener, only the TLS one.
    const redis = await startRedis(0, [
      '--tls-port',
      String(port),
      '--tls-cert-file',
      cert,
      '--tls-key-file',
      key,
      '--tls-ca-cert-file',
      cert,
      '--tls-auth-clients',
      'no',
    ]);
    stops.push(() => redis.stop());
    const url = `rediss://127.0.0.1:${port}`;
    const node = await startNode(url, PREFIX, { redis: { url, keyPrefix: PREFIX, redisCa: readFileSync(cert) } });
    stops.push(() => node.close());
    expect((await node.registry.addDevice('tls-dev')).deviceId).toBe('tls-dev');
    await expect(startNode(url, PREFIX)).rejects.toMatchObject({ code: 'ERR_HUB_UNAVAILABLE' });
  });
});
