// The device dials stream URLs only on its own hub (HostName or a listed gateway) with its
// string's scheme: a hostile hub cannot make it connect, bearing a token, to another host or
// port in its network, or downgrade wss to ws.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { formatConnectionString } from '../src/auth/connection-string.js';
import { DeviceClient, type IncomingStreamRequest } from '../src/sdk/index.js';
import { streamUrlProblem } from '../src/sdk/stream-transport.js';
import { generateStaticKeyPair, acceptAnyKey } from '../src/crypto/index.js';

const stops: Array<() => unknown> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

describe('stream URLs a device dials', () => {
  it('streamUrlProblem: the scheme of the string, on HostName or a gateway, default ports equal', () => {
    const hosts = ['hub.example.com', 'node1.example.com:8443'];
    expect(streamUrlProblem('wss://hub.example.com/streams/a', 'wss', hosts)).toBeUndefined();
    expect(streamUrlProblem('wss://hub.example.com:443/streams/a', 'wss', hosts)).toBeUndefined();
    expect(streamUrlProblem('wss://NODE1.example.com:8443/streams/a', 'wss', hosts)).toBeUndefined();
    expect(streamUrlProblem('ws://hub.example.com/streams/a', 'wss', hosts)).toMatch(/scheme/);
    expect(streamUrlProblem('wss://10.0.0.5:22/streams/a', 'wss', hosts)).toMatch(/not this device's hub/);
    expect(streamUrlProblem('wss://node1.example.com/streams/a', 'wss', hosts)).toMatch(/not this device's hub/);
    expect(streamUrlProblem('wss://u:p@hub.example.com/streams/a', 'wss', hosts)).toMatch(/credentials/);
    expect(streamUrlProblem('not a url', 'wss', hosts)).toMatch(/not a URL/);
  });

  it('a hub that rings with a URL elsewhere gets a rejection, and nothing dials that address', async () => {
    // The "elsewhere": a TCP port inside the device's network that counts who connects.
    let dialed = 0;
    const inside = net.createServer((s) => {
      dialed++;
      s.destroy();
    });
    await new Promise<void>((r) => inside.listen(0, '127.0.0.1', r));
    stops.push(() => new Promise<void>((r) => inside.close(() => r())));
    const insidePort = (inside.address() as net.AddressInfo).port;

    // A hostile hub: accepts the control socket, rings with that URL, records the answer.
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    stops.push(() => new Promise<void>((r) => wss.close(() => r())));
    const hubPort = (wss.address() as net.AddressInfo).port;
    const answers: Array<{ accept: boolean; reason?: string }> = [];
    wss.on('connection', (ws: WebSocket) => {
      ws.on('message', (d: Buffer) => answers.push(JSON.parse(d.toString()) as { accept: boolean }));
      for (const [i, url] of [`ws://127.0.0.1:${insidePort}/streams/s1`, `wss://127.0.0.1:${hubPort}/streams/s2`].entries()) {
        ws.send(
          JSON.stringify({
            type: 'streamRequest',
            requestId: `r${i}`,
            streamName: 'devstreams.v1',
            streamId: `s${i}`,
            url,
            authorizationToken: 'x'.repeat(32),
          }),
        );
      }
    });

    const cs = formatConnectionString({
      kind: 'device',
      hostName: `127.0.0.1:${hubPort}`,
      deviceId: 'dev-x',
      sharedAccessKey: Buffer.alloc(32, 1).toString('base64'),
      transport: 'ws',
    });
    const client = DeviceClient.fromConnectionString(cs);
    stops.push(() => client.close());
    const errors: Error[] = [];
    client.on('streamRequest', (req: IncomingStreamRequest) => {
      req.acceptSession({ staticKeys: generateStaticKeyPair(), verifyPeer: acceptAnyKey }).catch((e: Error) => errors.push(e));
    });
    await client.open();
    const end = Date.now() + 5000;
    while (answers.length < 2 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    expect(answers.map((a) => a.accept)).toEqual([false, false]);
    expect(errors.map((e) => (e as { code?: string }).code)).toEqual(['ERR_STREAM_REJECTED', 'ERR_STREAM_REJECTED']);
    expect(errors[0]!.message).toMatch(/not this device's hub/);
    expect(errors[1]!.message).toMatch(/scheme wss: is not this device's ws/);
    expect(dialed).toBe(0);
  });
});
