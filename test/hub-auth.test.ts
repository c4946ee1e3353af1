import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestHub, type TestHub, ServiceClient, DeviceClient, until } from './helpers/hub.js';
import { tryUpgrade, httpCall, rawBytes, upgradeThenJunk } from './helpers/raw.js';
import { createSasToken, deviceResource, hubResource, nowSeconds, parseConnectionString } from '../src/auth/index.js';
import { openStreamTransport } from '../src/sdk/index.js';
import { DeviceRegistry } from '../src/hub/index.js';

describe('hub authentication and bad input', () => {
  let th: TestHub;
  let deviceKey: string;
  let serviceKey: string;
  let ownerKey: string;
  let host: string;
  beforeAll(async () => {
    th = await startTestHub();
    const cs = parseConnectionString(th.addDevice('dev-a'));
    deviceKey = cs.sharedAccessKey;
    serviceKey = parseConnectionString(th.serviceString).sharedAccessKey;
    ownerKey = parseConnectionString(th.ownerString).sharedAccessKey;
    host = th.hub.hostName;
  });
  afterAll(async () => {
    await th.close();
  });

  const control = '/devices/dev-a/control';
  const later = (): number => nowSeconds() + 300;

  it('accepts a good device token on the control socket', async () => {
    const r = await tryUpgrade(th.hub.port, control, { authorization: createSasToken(deviceResource(host, 'dev-a'), deviceKey, later()) });
    expect(r.upgraded).toBe(true);
  });

  it('refuses missing, forged, expired and wrong-scope tokens before the upgrade', async () => {
    const other = Buffer.alloc(32, 1).toString('base64');
    const cases: [Record<string, string>, number, string][] = [
      [{}, 401, 'ERR_AUTH_MISSING'],
      [{ authorization: 'garbage' }, 401, 'ERR_AUTH_INVALID'],
      [{ authorization: createSasToken(deviceResource(host, 'dev-a'), other, later()) }, 401, 'ERR_AUTH_INVALID'],
      [{ authorization: createSasToken(deviceResource(host, 'dev-a'), deviceKey, nowSeconds() - 3600) }, 401, 'ERR_AUTH_EXPIRED'],
      [{ authorization: createSasToken(deviceResource(host, 'dev-b'), deviceKey, later()) }, 401, 'ERR_AUTH_SCOPE'],
      [{ authorization: createSasToken(deviceResource('elsewhere:1', 'dev-a'), deviceKey, later()) }, 401, 'ERR_AUTH_SCOPE'],
      [{ authorization: createSasToken(hubResource(host), serviceKey, later(), 'service') }, 401, 'ERR_AUTH_SCOPE'],
    ];
    for (const [headers, status, code] of cases) {
      const r = await tryUpgrade(th.hub.port, control, headers);
      expect(r.upgraded, code).toBe(false);
      expect(r.status, code).toBe(status);
      expect(r.body?.code, JSON.stringify(headers)).toBe(code);
    }
  });

  it('refuses bad credentials on stream requests and the registry API', async () => {
    const dev = createSasToken(deviceResource(host, 'dev-a'), deviceKey, later());
    const svc = createSasToken(hubResource(host), serviceKey, later(), 'service');
    const forged = createSasToken(hubResource(host), deviceKey, later(), 'service');
    const expired = createSasToken(hubResource(host), serviceKey, nowSeconds() - 3600, 'service');
    const owner = createSasToken(hubResource(host), ownerKey, later(), 'owner');
    expect((await httpCall(th.hub.port, 'POST', '/twins/dev-a/streams/s', { authorization: dev })).body?.code).toBe('ERR_AUTH_SCOPE');
    expect((await httpCall(th.hub.port, 'POST', '/twins/dev-a/streams/s', { authorization: forged })).body?.code).toBe('ERR_AUTH_INVALID');
    expect((await httpCall(th.hub.port, 'POST', '/twins/dev-a/streams/s', { authorization: expired })).body?.code).toBe('ERR_AUTH_EXPIRED');
    expect((await httpCall(th.hub.port, 'POST', '/twins/dev-a/streams/s', {})).status).toBe(401);
    // a service token cannot manage the registry, only read device status (without secrets); an owner token can
    const r = await httpCall(th.hub.port, 'PUT', '/devices/by-service', { authorization: svc }, '{}');
    expect([r.status, r.body?.code]).toEqual([401, 'ERR_AUTH_SCOPE']);
    const read = await httpCall(th.hub.port, 'GET', '/devices/dev-a', { authorization: svc });
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ deviceId: 'dev-a', connected: expect.any(Boolean) });
    expect(read.body).not.toHaveProperty('connectionString');
    expect((await httpCall(th.hub.port, 'GET', '/devices', { authorization: svc })).status).toBe(200);
    expect((await httpCall(th.hub.port, 'GET', '/devices/dev-a', { authorization: owner })).body).toHaveProperty('connectionString');
  });

  it('refuses a stream token used twice, a wrong token and an unknown stream', async () => {
    const d = DeviceClient.fromConnectionString(th.hub.deviceConnectionString(th.hub.registry.getDevice('dev-a')!));
    d.on('streamRequest', (req) => void req.accept().catch(() => {}));
    await d.open();
    const svc = ServiceClient.fromConnectionString(th.serviceString);
    try {
      const grant = await svc.requestStream('dev-a', 'twice');
      const first = await openStreamTransport(grant.url, grant.authorizationToken);
      const path = new URL(grant.url).pathname;
      const again = await tryUpgrade(th.hub.port, path, { authorization: `Bearer ${grant.authorizationToken}` });
      expect([again.status, again.body?.code]).toEqual([403, 'ERR_AUTH_TOKEN_REUSED']);
      const wrong = await tryUpgrade(th.hub.port, path, { authorization: `Bearer ${'A'.repeat(32)}` });
      expect([wrong.status, wrong.body?.code]).toEqual([401, 'ERR_AUTH_INVALID']);
      const none = await tryUpgrade(th.hub.port, path, {});
      expect([none.status, none.body?.code]).toEqual([401, 'ERR_AUTH_MISSING']);
      const unknown = await tryUpgrade(th.hub.port, '/streams/nope', { authorization: `Bearer ${grant.authorizationToken}` });
      expect([unknown.status, unknown.body?.code]).toEqual([401, 'ERR_AUTH_INVALID']);
      first.close();
    } finally {
      svc.close();
      await d.close();
    }
  });

  it('answers garbage on every endpoint with a JSON error and keeps serving', async () => {
    const owner = createSasToken(hubResource(host), ownerKey, later(), 'owner');
    const http: [string, string, Record<string, string>, string | undefined, number, string][] = [
      ['GET', '/', {}, undefined, 404, 'ERR_NOT_FOUND'],
      ['GET', '/nothing/here/at/all', {}, undefined, 404, 'ERR_NOT_FOUND'],
      ['DELETE', '/healthz', {}, undefined, 405, 'ERR_METHOD_NOT_ALLOWED'],
      ['GET', '/twins/dev-a/streams/s', {}, undefined, 405, 'ERR_METHOD_NOT_ALLOWED'],
      ['GET', '/devices/dev-a/control', {}, undefined, 400, 'ERR_BAD_REQUEST'],
      ['GET', '/streams/x', {}, undefined, 400, 'ERR_BAD_REQUEST'],
      ['POST', '/twins/%E0%A4%A/streams/s', {}, undefined, 400, 'ERR_BAD_REQUEST'],
      ['PUT', '/devices/new-1', { authorization: owner }, '{not json', 400, 'ERR_BAD_REQUEST'],
      ['PUT', '/devices/new-1', { authorization: owner }, 'x'.repeat(100_000), 413, 'ERR_PAYLOAD_TOO_LARGE'],
      ['PUT', '/devices/bad%20id', { authorization: owner }, '{}', 400, 'ERR_BAD_REQUEST'],
      [
        'POST',
        '/twins/dev-a/streams/s',
        {
          authorization: createSasToken(hubResource(host), serviceKey, later(), 'service'),
          'iothub-streaming-response-timeout-in-seconds': 'soon',
        },
        undefined,
        400,
        'ERR_BAD_REQUEST',
      ],
      [
        'POST',
        '/twins/dev-a/streams/bad%20name',
        { authorization: createSasToken(hubResource(host), serviceKey, later(), 'service') },
        undefined,
        400,
        'ERR_BAD_REQUEST',
      ],
    ];
    for (const [method, path, headers, body, status, code] of http) {
      const r = await httpCall(th.hub.port, method, path, headers, body).catch(() => ({
        status: -1,
        body: { code: 'reset' },
        upgraded: false,
      }));
      expect([r.status, r.body?.code], `${method} ${path}`).toEqual([status, code]);
    }
    for (const path of ['/', '/devices/dev-a', '/streams', '/devices/%ZZ/control', '/twins/dev-a/streams/s']) {
      const r = await tryUpgrade(th.hub.port, path, { authorization: 'x' });
      expect(r.upgraded, path).toBe(false);
      expect(typeof r.body?.code, path).toBe('string');
    }
    const junk = await rawBytes(th.hub.port, Buffer.from([0, 1, 2, 3, 255, 254, 13, 10, 13, 10]));
    expect(junk).toMatch(/^HTTP\/1\.1 400/);
    expect(junk).toContain('ERR_BAD_REQUEST');
    expect((await httpCall(th.hub.port, 'GET', '/healthz')).status).toBe(200);
  });

  it('drops a control socket that sends invalid WebSocket frames, and keeps serving', async () => {
    const auth = { authorization: createSasToken(deviceResource(host, 'dev-a'), deviceKey, later()) };
    const junk = Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09]);
    expect(await upgradeThenJunk(th.hub.port, control, auth, junk)).toBe(true);
    // an unmasked client frame is a protocol error too
    expect(await upgradeThenJunk(th.hub.port, control, auth, Buffer.from([0x82, 0x03, 1, 2, 3]))).toBe(true);
    expect((await httpCall(th.hub.port, 'GET', '/healthz')).status).toBe(200);
  });

  it('closes a control socket that sends garbage, and serves the next device', async () => {
    const d = DeviceClient.fromConnectionString(th.hub.deviceConnectionString(th.hub.registry.getDevice('dev-a')!), {
      backoff: { initialMs: 20, maxMs: 100 },
    });
    await d.open();
    let dropped = 0;
    d.on('disconnected', () => dropped++);
    d.sendControl({ type: 'nonsense' });
    await until(() => dropped > 0, 5000, 'hub drops garbage sender');
    await until(() => d.connected, 5000, 'reconnect');
    await d.close();
  });

  it('takes registry changes made by another process at once', async () => {
    const cs = th.addDevice('dev-ext');
    const d = DeviceClient.fromConnectionString(cs, { backoff: { initialMs: 20, maxMs: 100 } });
    await d.open();
    const refused: string[] = [];
    d.on('refused', (e) => refused.push(e.code));
    // Another registry instance stands for the CLI writing the same file.
    const other = DeviceRegistry.open(th.dir);
    other.rotateDeviceKey('dev-ext');
    // The next authentication sees the change: the live socket is closed, the old key fails,
    // and the client stops (a refused credential is permanent) instead of retrying.
    await until(() => refused.includes('ERR_AUTH_INVALID'), 5000, 'old key refused');
    expect(d.connected).toBe(false);
    await d.close();
    other.addDevice('dev-late');
    const svc = ServiceClient.fromConnectionString(th.serviceString);
    expect(await svc.createStream('dev-late', 's').catch((e: { code: string }) => e.code)).toBe('ERR_DEVICE_OFFLINE');
    svc.close();
  });

  it('renews the control token before it expires', async () => {
    const cs = th.addDevice('dev-renew');
    // 1 s tokens, renewed every 0.8 s: the socket stays up across several token lifetimes.
    const d = DeviceClient.fromConnectionString(cs, { tokenTtlSeconds: 1 });
    let renewed = 0;
    const orig = d.sendControl.bind(d);
    d.sendControl = (m: object) => {
      if ((m as { type: string }).type === 'renew') renewed++;
      orig(m);
    };
    await d.open();
    await until(() => renewed >= 2, 8000, 'two renewals');
    expect(d.connected).toBe(true);
    await d.close();
  });

  it('closes a control socket whose token expires unrenewed (4401)', async () => {
    const th2 = await startTestHub({ clockSkewSeconds: 0, controlPingIntervalMs: 100 });
    try {
      const cs = parseConnectionString(th2.addDevice('dev-exp'));
      const { default: WebSocket } = await import('ws');
      const ws = new WebSocket(`ws://127.0.0.1:${th2.hub.port}/devices/dev-exp/control`, {
        headers: { authorization: createSasToken(deviceResource(th2.hub.hostName, 'dev-exp'), cs.sharedAccessKey, nowSeconds() + 1) },
      });
      const code = await new Promise<number>((resolve) => ws.on('close', (c) => resolve(c)));
      expect(code).toBe(4401);
    } finally {
      await th2.close();
    }
  });

  it('exposes health and Prometheus metrics', async () => {
    const h = await httpCall(th.hub.port, 'GET', '/healthz');
    expect(h.status).toBe(200);
    const res = await fetch(`http://127.0.0.1:${th.hub.port}/metrics`);
    const text = await res.text();
    for (const name of [
      'devstreams_connected_devices',
      'devstreams_active_streams',
      'devstreams_stream_requests_total',
      'devstreams_relayed_bytes_total',
      'devstreams_auth_failures_total',
    ]) {
      expect(text).toContain(name);
    }
    expect(text).toMatch(/devstreams_auth_failures_total\{endpoint="devices",code="ERR_AUTH_EXPIRED"\} [1-9]/);
  });
});
