import { afterEach, describe, expect, it } from 'vitest';
import { generateStaticKeyPair, acceptAnyKey } from '../src/crypto/index.js';
import { AllowList, DeviceProxy } from '../src/proxy/index.js';
import { DeviceClient, ServiceClient } from '../src/sdk/index.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { startEchoServer, type Target } from './helpers/targets.js';
import { digestStream, sha256, randomBytes } from './helpers/session-pair.js';

let hub: TestHub;
let echo: Target;
const stops: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (stops.length) await stops.pop()!();
});

async function setup(): Promise<void> {
  hub = await startTestHub();
  echo = await startEchoServer();
  stops.push(
    () => hub.close(),
    () => echo.close(),
  );
}

describe('service trusting the hub for device identity', () => {
  it('checks the handshake against the key the device announced to the hub', async () => {
    await setup();
    const keys = generateStaticKeyPair();
    const serviceKeys = generateStaticKeyPair();
    const device = new DeviceProxy({
      connectionString: hub.addDevice('dev-th'),
      allow: new AllowList([`127.0.0.1:${echo.port}`]),
      staticKeys: keys,
      serviceKeys: [serviceKeys.publicKey],
    });
    await device.start();
    stops.push(() => device.stop());
    const svc = ServiceClient.fromConnectionString(hub.serviceString);
    stops.push(() => svc.close());
    const { session, secure } = await svc.connect('dev-th', { staticKeys: serviceKeys, trustHub: true });
    stops.push(() => session.close());
    expect(secure?.session.remoteStatic.equals(keys.publicKey)).toBe(true);
    const channel = session.openChannel({ host: '127.0.0.1', port: echo.port });
    const data = randomBytes(50_000);
    const back = digestStream(channel);
    channel.end(data);
    expect((await back).hash).toBe(sha256(data));
  });

  it('refuses a device that proves another key than the one it announced', async () => {
    await setup();
    const announced = generateStaticKeyPair();
    const actual = generateStaticKeyPair();
    const client = DeviceClient.fromConnectionString(hub.addDevice('dev-liar'), { publicKey: announced.publicKey });
    client.on('streamRequest', (r) => void r.acceptSession({ staticKeys: actual, verifyPeer: acceptAnyKey }).catch(() => {}));
    await client.open();
    stops.push(() => client.close());
    const svc = ServiceClient.fromConnectionString(hub.serviceString);
    stops.push(() => svc.close());
    await expect(svc.connect('dev-liar', { staticKeys: generateStaticKeyPair(), trustHub: true })).rejects.toMatchObject({
      code: expect.stringMatching(/^ERR_HANDSHAKE_/),
    });
  });

  it('refuses when the device announced no key', async () => {
    await setup();
    const client = DeviceClient.fromConnectionString(hub.addDevice('dev-silent-key'));
    client.on(
      'streamRequest',
      (r) => void r.acceptSession({ staticKeys: generateStaticKeyPair(), verifyPeer: acceptAnyKey }).catch(() => {}),
    );
    await client.open();
    stops.push(() => client.close());
    const svc = ServiceClient.fromConnectionString(hub.serviceString);
    stops.push(() => svc.close());
    await expect(svc.connect('dev-silent-key', { staticKeys: generateStaticKeyPair(), trustHub: true })).rejects.toMatchObject({
      code: 'ERR_HANDSHAKE_PEER_UNKNOWN',
    });
  });
});
