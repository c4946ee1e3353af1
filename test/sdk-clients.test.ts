import { afterEach, describe, expect, it } from 'vitest';
import { startTestHub, echoDevice, nextMessage, until, ServiceClient, DeviceClient, type TestHub } from './helpers/hub.js';
import { Backoff } from '../src/sdk/index.js';
import { formatConnectionString, parseConnectionString } from '../src/auth/index.js';
import { hasCode } from '../src/errors.js';

describe('SDK clients', () => {
  const hubs: TestHub[] = [];
  afterEach(async () => {
    for (const h of hubs.splice(0)) await h.close();
  });

  it('backoff grows exponentially with jitter, capped, and resets', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 1000 });
    const first = b.next();
    expect(first).toBeGreaterThanOrEqual(50);
    expect(first).toBeLessThanOrEqual(100);
    const delays = Array.from({ length: 10 }, () => b.next());
    for (const d of delays) expect(d).toBeLessThanOrEqual(1000);
    expect(delays.at(-1)!).toBeGreaterThanOrEqual(500);
    b.reset();
    expect(b.next()).toBeLessThanOrEqual(100);
  });

  it('connects through GatewayHostName while tokens stay scoped to HostName', async () => {
    const th = await startTestHub({ publicHost: 'hub.example.com:443' });
    hubs.push(th);
    const gateway = `127.0.0.1:${th.hub.port}`;
    const withGateway = (cs: string): string => formatConnectionString({ ...parseConnectionString(cs), gatewayHostName: gateway });
    const dcs = withGateway(th.addDevice('gw-dev'));
    expect(dcs).toContain('HostName=hub.example.com:443');
    const device = await echoDevice(dcs);
    const svc = ServiceClient.fromConnectionString(withGateway(th.serviceString));
    const s = await svc.createStream('gw-dev', 'ssh');
    const reply = nextMessage(s.transport);
    s.transport.send([Buffer.from('through the gateway')]);
    expect((await reply).toString()).toBe('through the gateway');
    s.transport.close();
    svc.close();
    await device.close();
  });

  it('gives typed errors: bad strings, refused credentials, unreachable hub', async () => {
    expect(() => DeviceClient.fromConnectionString('HostName=x')).toThrow(expect.objectContaining({ code: 'ERR_CONNECTION_STRING' }));
    expect(() => ServiceClient.fromConnectionString('nonsense')).toThrow(expect.objectContaining({ code: 'ERR_CONNECTION_STRING' }));
    const th = await startTestHub();
    hubs.push(th);
    const cs = parseConnectionString(th.addDevice('typed'));
    const wrongKey = formatConnectionString({ ...cs, sharedAccessKey: Buffer.alloc(32, 3).toString('base64') });
    await expect(DeviceClient.fromConnectionString(wrongKey).open()).rejects.toMatchObject({ code: 'ERR_AUTH_INVALID' });
    const svcWrong = ServiceClient.fromConnectionString(
      formatConnectionString({ ...parseConnectionString(th.serviceString), sharedAccessKey: Buffer.alloc(32, 4).toString('base64') }),
    );
    await expect(svcWrong.createStream('typed', 's')).rejects.toMatchObject({ code: 'ERR_AUTH_INVALID' });
    svcWrong.close();
    const nowhere = ServiceClient.fromConnectionString(
      formatConnectionString({ ...parseConnectionString(th.serviceString), hostName: '127.0.0.1:1' }),
    );
    const err = await nowhere.createStream('typed', 's').catch((e: unknown) => e);
    expect(hasCode(err, 'ERR_HUB_UNAVAILABLE')).toBe(true);
    nowhere.close();
  });

  it('keeps retrying a hub that is down, then connects when it comes up', async () => {
    const th = await startTestHub();
    const cs = th.addDevice('patient');
    const port = th.hub.port;
    const dir = th.dir;
    await th.hub.close();
    const d = DeviceClient.fromConnectionString(cs, { backoff: { initialMs: 20, maxMs: 200 } });
    let failures = 0;
    d.on('error', () => failures++);
    const opened = d.open();
    await until(() => failures >= 2, 5000, 'failed attempts');
    const th2 = await startTestHub({ dataDir: dir, port });
    hubs.push(th2);
    await opened;
    expect(d.connected).toBe(true);
    await d.close();
    hubs.push(th); // closed already; its cleanup removes the shared directory after th2 stops
  });

  it('rejects a stream automatically when the device has no handler', async () => {
    const th = await startTestHub();
    hubs.push(th);
    const d = DeviceClient.fromConnectionString(th.addDevice('nohandler'));
    await d.open();
    const svc = ServiceClient.fromConnectionString(th.serviceString);
    const err = await svc.createStream('nohandler', 's').catch((e: unknown) => e);
    expect(hasCode(err, 'ERR_STREAM_REJECTED')).toBe(true);
    expect((err as Error).message).toContain('no stream handler');
    svc.close();
    await d.close();
  });

  it('manages the registry over HTTP with an owner string', async () => {
    const th = await startTestHub();
    hubs.push(th);
    const owner = ServiceClient.fromConnectionString(th.ownerString);
    const info = await owner.addDevice('api-dev');
    expect(info.connectionString).toContain('DeviceId=api-dev');
    await expect(owner.addDevice('api-dev')).rejects.toMatchObject({ code: 'ERR_DEVICE_EXISTS' });
    const d = await echoDevice(info.connectionString!);
    expect((await owner.getDevice('api-dev')).connected).toBe(true);
    expect((await owner.listDevices()).map((x) => x.deviceId)).toEqual(['api-dev']);
    let dropped = false;
    d.on('disconnected', () => (dropped = true));
    const rotated = await owner.rotateDeviceKey('api-dev');
    expect(rotated.connectionString).not.toBe(info.connectionString);
    await until(() => dropped, 5000, 'rotation drops the socket');
    await d.close();
    await owner.removeDevice('api-dev');
    await expect(owner.getDevice('api-dev')).rejects.toMatchObject({ code: 'ERR_DEVICE_NOT_FOUND' });
    const svc = ServiceClient.fromConnectionString(th.serviceString);
    await expect(svc.addDevice('x')).rejects.toMatchObject({ code: 'ERR_AUTH_SCOPE' });
    svc.close();
    owner.close();
  });
});
