// Service identities: more than one named service policy (one per operator or tool), each with
// its own key and limits (pending requests, rate), revocable on its own. Before, one shared
// `service` policy carried every client, so one client could use up the pending slots and the
// rate of all.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSasToken, deviceResource, hubResource, nowSeconds, parseConnectionString } from '../src/auth/index.js';
import type { DeviceRegistry } from '../src/hub/registry.js';
import { ServiceClient } from '../src/sdk/index.js';
import { ensureBuilt, runCli } from './helpers/cli-process.js';
import { startTestHub, until, type TestHub } from './helpers/hub.js';
import { httpCall, type RawAnswer } from './helpers/raw.js';
import { hasRedisServer, startRedis } from './helpers/redis.js';
import { FLEET_HOST, addr, startNode } from './helpers/fleet.js';

let th: TestHub | undefined;
const stops: Array<() => unknown> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
  await th?.close();
  th = undefined;
});

/** A device on the control socket that never answers stream requests. */
/** A device on its control socket that never answers; resolves with the count of rings it got. */
async function silentDevice(hub: TestHub, id: string): Promise<() => number> {
  const cs = parseConnectionString(hub.addDevice(id));
  const token = createSasToken(deviceResource(hub.hub.hostName, id), cs.sharedAccessKey, nowSeconds() + 600);
  const ws = new WebSocket(`ws://127.0.0.1:${hub.hub.port}/devices/${id}/control`, { headers: { authorization: token } });
  ws.on('error', () => {});
  let rings = 0;
  ws.on('message', (m: Buffer) => {
    if ((JSON.parse(m.toString()) as { type?: string }).type === 'streamRequest') rings++;
  });
  stops.push(() => ws.terminate());
  await new Promise<void>((r) => ws.once('open', () => r()));
  return () => rings;
}

function tokenFor(hostName: string, policy: string, key: string): string {
  return createSasToken(hubResource(hostName), key, nowSeconds() + 600, policy);
}

/** A stream request that waits at most 1 s for the device. */
function ask(port: number, deviceId: string, token: string): Promise<RawAnswer> {
  return httpCall(port, 'POST', `/twins/${deviceId}/streams/ssh`, {
    authorization: token,
    'iothub-streaming-response-timeout-in-seconds': '1',
  });
}

describe('service identities', () => {
  it('each has its own pending budget: one at its limit gets 429, another and the shared policy still ring', async () => {
    th = await startTestHub();
    const reg = th.hub.registry;
    const alice = await reg.addService('alice', { maxPending: 1 });
    const ci = await reg.addService('ci-bot');
    const rings = await silentDevice(th, 'dev-a');
    const port = th.hub.port;
    const host = th.hub.hostName;
    const first = ask(port, 'dev-a', tokenFor(host, 'alice', alice.key));
    await until(() => rings() === 1, 5000, 'the first to ring'); // so it is pending
    const second = await ask(port, 'dev-a', tokenFor(host, 'alice', alice.key));
    expect([second.status, second.body?.code]).toEqual([429, 'ERR_RATE_LIMITED']);
    expect(second.body?.message).toContain('alice');
    const others = await Promise.all([
      ask(port, 'dev-a', tokenFor(host, 'ci-bot', ci.key)),
      ask(port, 'dev-a', tokenFor(host, 'service', reg.policyKey('service')!)),
    ]);
    for (const r of others) expect(r.body?.code).toBe('ERR_STREAM_TIMEOUT'); // rung, the device stayed silent
    expect((await first).body?.code).toBe('ERR_STREAM_TIMEOUT');
  });

  it('each may have its own rate; past it only that identity gets 429', async () => {
    th = await startTestHub();
    const reg = th.hub.registry;
    const bot = await reg.addService('bot', { ratePerSecond: 2 });
    const host = th.hub.hostName;
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await ask(th.hub.port, 'nobody', tokenFor(host, 'bot', bot.key)));
    expect(answers.map((a) => a.body?.code)).toEqual(['ERR_DEVICE_NOT_FOUND', 'ERR_DEVICE_NOT_FOUND', 'ERR_RATE_LIMITED']);
    expect((await ask(th.hub.port, 'nobody', tokenFor(host, 'service', reg.policyKey('service')!))).body?.code).toBe(
      'ERR_DEVICE_NOT_FOUND',
    );
  });

  it('revocable on its own: a removed identity gets 401 at once, the others work; a rotated key replaces the old one', async () => {
    th = await startTestHub();
    const reg = th.hub.registry as DeviceRegistry;
    const alice = reg.addService('alice');
    const bob = reg.addService('bob');
    const host = th.hub.hostName;
    reg.removeService('alice');
    const refused = await ask(th.hub.port, 'nobody', tokenFor(host, 'alice', alice.key));
    expect([refused.status, refused.body?.code]).toEqual([401, 'ERR_AUTH_INVALID']);
    expect((await ask(th.hub.port, 'nobody', tokenFor(host, 'bob', bob.key))).body?.code).toBe('ERR_DEVICE_NOT_FOUND');
    const rotated = reg.rotateServiceKey('bob');
    expect((await ask(th.hub.port, 'nobody', tokenFor(host, 'bob', bob.key))).status).toBe(401);
    expect((await ask(th.hub.port, 'nobody', tokenFor(host, 'bob', rotated.key))).body?.code).toBe('ERR_DEVICE_NOT_FOUND');
    // Reserved and malformed names are refused.
    expect(() => reg.addService('owner')).toThrow(/invalid service name/);
    expect(() => reg.addService('has space')).toThrow(/invalid service name/);
    expect(() => reg.addService('bob')).toThrow(/already exists/);
  });

  it("the SDK speaks a service identity's string as it speaks the shared one", async () => {
    th = await startTestHub();
    const rec = await th.hub.registry.addService('alice');
    const cs = th.hub
      .policyConnectionString('service')
      .replace('SharedAccessKeyName=service', 'SharedAccessKeyName=alice')
      .replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${rec.key}`);
    const svc = ServiceClient.fromConnectionString(cs);
    stops.push(() => svc.close());
    await expect(svc.createStream('nobody', 'ssh')).rejects.toMatchObject({ code: 'ERR_DEVICE_NOT_FOUND' });
  });
});

describe('CLI: registry add-service / list-services / remove-service', () => {
  beforeAll(() => ensureBuilt());

  it('adds an identity with limits and prints its string; lists; revokes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'devstreams-svc-'));
    stops.push(() => rmSync(dir, { recursive: true, force: true }));
    const data = join(dir, 'hub');
    const common = ['--data', data, '--host', '127.0.0.1:9', '--plain'];
    const added = runCli(['registry', 'add-service', 'alice', '--max-pending', '8', '--rate', '20', ...common]);
    expect(added.status).toBe(0);
    const cs = parseConnectionString(added.stdout.trim());
    expect(cs.kind === 'policy' && cs.policy).toBe('alice');
    expect(runCli(['registry', 'add-service', 'ci', ...common]).status).toBe(0);
    expect(runCli(['registry', 'list-services', ...common]).stdout).toBe('alice maxPending=8 rate=20/s\nci\n');
    expect(runCli(['registry', 'service-string', '--name', 'ci', ...common]).stdout).toContain('SharedAccessKeyName=ci;');
    expect(runCli(['registry', 'remove-service', 'alice', ...common]).status).toBe(0);
    expect(runCli(['registry', 'list-services', ...common]).stdout).toBe('ci\n');
    const again = runCli(['registry', 'remove-service', 'alice', ...common]);
    expect([again.status, again.stderr]).toEqual([1, expect.stringContaining('ERR_NOT_FOUND')]);
    const bad = runCli(['registry', 'add-service', 'owner', ...common]);
    expect(bad.stderr).toContain('ERR_BAD_REQUEST');
  });
});

describe.skipIf(!hasRedisServer)('service identities in a fleet', () => {
  it('added on one node, usable on another; removed, refused there as soon as the registry channel tells it', async () => {
    const redis = await startRedis();
    stops.push(() => redis.stop());
    const a = await startNode(redis.url, 'svc:');
    const b = await startNode(redis.url, 'svc:');
    stops.push(() => Promise.all([a.close(), b.close()]));
    const rec = await a.registry.addService('alice', { maxPending: 3 });
    const token = tokenFor(FLEET_HOST, 'alice', rec.key);
    const post = (): Promise<Response> =>
      fetch(`http://${addr(b)}/twins/nobody/streams/ssh`, { method: 'POST', headers: { authorization: token } });
    expect(((await (await post()).json()) as { code: string }).code).toBe('ERR_DEVICE_NOT_FOUND');
    await a.registry.removeService('alice');
    // B hears of it on the registry channel (as of a removed device): refused once it has.
    let refused: { status: number; code: string } | undefined;
    for (let i = 0; i < 100 && refused?.status !== 401; i++) {
      const r = await post();
      refused = { status: r.status, code: ((await r.json()) as { code: string }).code };
      if (r.status !== 401) await new Promise((res) => setTimeout(res, 20));
    }
    expect(refused).toEqual({ status: 401, code: 'ERR_AUTH_INVALID' });
  });
});
