import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startTestHub, echoDevice, nextMessage, until, ServiceClient, DeviceClient, type TestHub } from './helpers/hub.js';
import { hasCode } from '../src/errors.js';

describe('hub rendezvous', () => {
  let th: TestHub;
  const cleanups: (() => Promise<void> | void)[] = [];
  beforeEach(async () => {
    th = await startTestHub();
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    await th.close();
  });

  it('pairs device and service and relays messages both ways', async () => {
    const device = await echoDevice(th.addDevice('dev-1'));
    cleanups.push(() => device.close());
    const svc = ServiceClient.fromConnectionString(th.serviceString);
    cleanups.push(() => svc.close());
    const stream = await svc.createStream('dev-1', 'ssh');
    expect(stream.streamName).toBe('ssh');
    const reply = nextMessage(stream.transport);
    stream.transport.send([Buffer.from('hello '), Buffer.from('device')]);
    expect((await reply).toString()).toBe('hello device');
    await until(() => th.hub.activeStreams === 1, 5000, 'active stream');
    stream.transport.close();
    await until(() => th.hub.activeStreams === 0, 5000, 'stream end');
  });

  it('answers 200 with the IoT-Hub headers and body fields', async () => {
    const device = await echoDevice(th.addDevice('dev-h'));
    cleanups.push(() => device.close());
    const svc = ServiceClient.fromConnectionString(th.serviceString);
    cleanups.push(() => svc.close());
    const grant = await svc.requestStream('dev-h', 'web');
    expect(grant.isAccepted).toBe(true);
    expect(grant.url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\/streams\//);
    expect(grant.authorizationToken.length).toBeGreaterThan(16);
  });

  it('delivers what a side sends before its partner has connected', async () => {
    const d = DeviceClient.fromConnectionString(th.addDevice('dev-early'));
    // The device greets as soon as its side is open, usually before the service side exists.
    d.on('streamRequest', (req) => void req.accept().then((t) => t.send([Buffer.from('SSH-2.0-greeting')])));
    await d.open();
    cleanups.push(() => d.close());
    const svc = ServiceClient.fromConnectionString(th.serviceString);
    cleanups.push(() => svc.close());
    for (let i = 0; i < 5; i++) {
      const s = await svc.createStream('dev-early', `s${i}`);
      expect((await nextMessage(s.transport)).toString()).toBe('SSH-2.0-greeting');
      s.transport.close();
    }
  });

  it('passes a rejection reason to the service', async () => {
    const d = DeviceClient.fromConnectionString(th.addDevice('dev-r'));
    d.on('streamRequest', (req) => req.reject('port 22 closed for maintenance'));
    await d.open();
    cleanups.push(() => d.close());
    const svc = ServiceClient.fromConnectionString(th.serviceString);
    cleanups.push(() => svc.close());
    const err = await svc.createStream('dev-r', 'ssh').catch((e: unknown) => e);
    expect(hasCode(err, 'ERR_STREAM_REJECTED')).toBe(true);
    expect((err as Error).message).toContain('port 22 closed for maintenance');
  });

  it('reports an offline device and an unknown device as 404 with distinct codes', async () => {
    th.addDevice('dev-off');
    const svc = ServiceClient.fromConnectionString(th.serviceString);
    cleanups.push(() => svc.close());
    expect(await svc.createStream('dev-off', 's').catch((e: { code: string }) => e.code)).toBe('ERR_DEVICE_OFFLINE');
    expect(await svc.createStream('nobody', 's').catch((e: { code: string }) => e.code)).toBe('ERR_DEVICE_NOT_FOUND');
  });

  it('times out with 504 when the device never answers', async () => {
    const d = DeviceClient.fromConnectionString(th.addDevice('dev-silent'));
    d.on('streamRequest', () => {
      /* never answers */
    });
    await d.open();
    cleanups.push(() => d.close());
    const svc = ServiceClient.fromConnectionString(th.serviceString);
    cleanups.push(() => svc.close());
    const err = await svc.createStream('dev-silent', 's', { responseTimeoutSeconds: 1 }).catch((e: unknown) => e);
    expect(hasCode(err, 'ERR_STREAM_TIMEOUT')).toBe(true);
  });

  it('closes the other side with a reason when one side closes', async () => {
    let deviceSide: import('../src/transport/index.js').WebSocketClientTransport | undefined;
    const d = DeviceClient.fromConnectionString(th.addDevice('dev-c'));
    d.on('streamRequest', (req) => void req.accept().then((t) => (deviceSide = t)));
    await d.open();
    cleanups.push(() => d.close());
    const svc = ServiceClient.fromConnectionString(th.serviceString);
    cleanups.push(() => svc.close());
    const s = await svc.createStream('dev-c', 's');
    await until(() => deviceSide !== undefined && th.hub.activeStreams === 1, 5000, 'paired');
    const closed = new Promise<Error | undefined>((resolve) => s.transport.attach({ onMessage() {}, onDrain() {}, onClose: resolve }));
    deviceSide!.close();
    await closed;
    expect(s.transport.closed).toBe(true);
  });

  it('device reconnects after the hub restarts on the same port and data', async () => {
    const cs = th.addDevice('dev-re');
    const device = await echoDevice(cs);
    cleanups.push(() => device.close());
    const port = th.hub.port;
    const dir = th.dir;
    await th.hub.close();
    await until(() => !device.connected, 5000, 'device sees hub gone');
    const th2 = await startTestHub({ dataDir: dir, port });
    try {
      await until(() => th2.hub.connectedDevices === 1, 10_000, 'device reconnect');
      const svc = ServiceClient.fromConnectionString(th2.serviceString);
      const s = await svc.createStream('dev-re', 's');
      const reply = nextMessage(s.transport);
      s.transport.send([Buffer.from('again')]);
      expect((await reply).toString()).toBe('again');
      s.transport.close();
      svc.close();
    } finally {
      await device.close();
      await th2.close();
    }
  });
});
