// A device that holds resumable sessions with limits of its own (`resume` given, as the device
// proxy's --queue-target-ms and --pace-percent do) still answers a service that did not ask for
// resumption (a sealed stream: service-proxy --no-resume) with a plain sealed session: the stream's
// name says which kind the service speaks, and the resumable layer on one end only breaks it.
import { afterEach, describe, expect, it } from 'vitest';
import { acceptAnyKey, expectKey, generateStaticKeyPair } from '../src/crypto/index.js';
import type { Channel, OpenRequest } from '../src/mux/index.js';
import { DeviceClient, ServiceClient } from '../src/sdk/index.js';
import { startTestHub } from './helpers/hub.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe('a device with resume limits of its own', () => {
  it.each([
    { name: 'sealed (not resumable)', resume: false },
    { name: 'resumable', resume: true },
  ])('serves a $name session from a service', async ({ resume }) => {
    const hub = await startTestHub();
    cleanups.push(() => hub.close());
    const deviceKeys = generateStaticKeyPair();
    const device = DeviceClient.fromConnectionString(hub.addDevice('dev-kinds'), { backoff: { initialMs: 50, maxMs: 200 } });
    cleanups.push(() => device.close());
    const kinds: boolean[] = [];
    device.on('streamRequest', (req) => {
      const onOpen = (o: OpenRequest): void => {
        const ch = o.accept();
        ch.on('error', () => {});
        ch.pipe(ch);
      };
      // What the device proxy passes with --pace-percent 50.
      void req
        .acceptSession({ staticKeys: deviceKeys, verifyPeer: acceptAnyKey, resume: { interactivePacePercent: 50 }, mux: { onOpen } })
        .then((ds) => kinds.push(ds.resumable !== undefined));
    });
    await device.open();
    const svc = ServiceClient.fromConnectionString(hub.serviceString);
    cleanups.push(async () => svc.close());
    const ds = await svc.connect('dev-kinds', {
      staticKeys: generateStaticKeyPair(),
      verifyPeer: expectKey(deviceKeys.publicKey),
      resume,
    });
    const ch: Channel = ds.session.openChannel({ host: '127.0.0.1', port: 9 });
    const echoed = new Promise<Buffer>((resolve, reject) => {
      ch.once('data', resolve);
      ch.once('error', reject);
    });
    ch.write('hello');
    expect((await echoed).toString()).toBe('hello');
    expect(kinds).toEqual([resume]); // the device's session is of the kind the service asked for
    ds.session.close();
  });
});
