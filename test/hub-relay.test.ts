import { afterEach, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { startTestHub, echoDevice, nextMessage, until, ServiceClient, DeviceClient, tempDir, type TestHub } from './helpers/hub.js';
import type { WebSocketClientTransport } from '../src/transport/index.js';
import { frameHeader } from '../src/transport/ws-frame.js';
import { DEFAULT_MAX_MESSAGE_SIZE } from '../src/transport/transport.js';
import { Hub, createSelfSignedCertificate } from '../src/hub/index.js';
import { DEFAULT_RELAY_READ_BYTES } from '../src/hub/config.js';
import { hasCode } from '../src/errors.js';

const HIGH = 256 * 1024;

describe('hub relay', () => {
  const hubs: TestHub[] = [];
  afterEach(async () => {
    for (const h of hubs.splice(0)) await h.close();
  });

  it('keeps hub buffering bounded when one side stops reading, and loses nothing', async () => {
    const th = await startTestHub({ relayHighWater: HIGH });
    hubs.push(th);
    let deviceSide: WebSocketClientTransport | undefined;
    const d = DeviceClient.fromConnectionString(th.addDevice('dev-bp'));
    d.on('streamRequest', (req) => void req.accept().then((t) => (deviceSide = t)));
    await d.open();
    const svc = ServiceClient.fromConnectionString(th.serviceString);
    const s = await svc.createStream('dev-bp', 'bulk');
    await until(() => deviceSide !== undefined && th.hub.activeStreams === 1, 5000, 'paired');
    // The service stops reading: its socket is paused, so the kernel and then the hub fill up.
    s.transport.socket.pause();
    let received = 0;
    s.transport.attach({ onMessage: (m) => (received += m.length), onDrain() {}, onClose() {} });
    const dev = deviceSide!;
    let drained: (() => void) | undefined;
    dev.attach({ onMessage() {}, onDrain: () => drained?.(), onClose() {} });
    const chunk = Buffer.alloc(60 * 1024, 0x61);
    const LIMIT = 48 * 1024 * 1024; // bounded: far more than loopback socket buffers hold
    let sent = 0;
    let blocked = false;
    while (sent < LIMIT) {
      const ok = dev.send([chunk]);
      sent += chunk.length;
      if (!ok) {
        const got = await new Promise<boolean>((resolve) => {
          const t = setTimeout(() => resolve(false), 500);
          drained = () => {
            clearTimeout(t);
            resolve(true);
          };
        });
        drained = undefined;
        if (!got) {
          blocked = true;
          break;
        }
      }
    }
    // The device was made to wait: the hub stopped reading it instead of buffering.
    expect(blocked).toBe(true);
    expect(sent).toBeLessThan(LIMIT);
    const stats = th.hub.streamStats(s.streamId)!;
    // At most the high-water mark plus what one socket read brings (and the frame it ends in).
    const bound = HIGH + DEFAULT_RELAY_READ_BYTES + DEFAULT_MAX_MESSAGE_SIZE;
    expect(stats.maxBufferedToService).toBeLessThanOrEqual(bound);
    expect(stats.bufferedToService).toBeLessThanOrEqual(bound);
    // Reading again delivers every byte.
    s.transport.socket.resume();
    await until(() => received === sent, 15_000, `all ${sent} bytes (got ${received})`);
    s.transport.close();
    svc.close();
    await d.close();
  });

  it('closes a stream whose side sends an oversized message, and tells the other side', async () => {
    const th = await startTestHub();
    hubs.push(th);
    let deviceSide: WebSocketClientTransport | undefined;
    const d = DeviceClient.fromConnectionString(th.addDevice('dev-big'));
    d.on('streamRequest', (req) => void req.accept().then((t) => (deviceSide = t)));
    await d.open();
    const svc = ServiceClient.fromConnectionString(th.serviceString);
    const s = await svc.createStream('dev-big', 's');
    await until(() => deviceSide !== undefined && th.hub.activeStreams === 1, 5000, 'paired');
    const deviceClosed = new Promise<void>((resolve) => deviceSide!.attach({ onMessage() {}, onDrain() {}, onClose: () => resolve() }));
    // bypass the transport's own size check: write a frame straight to the socket
    const size = DEFAULT_MAX_MESSAGE_SIZE + 1;
    s.transport.socket.write(Buffer.concat([frameHeader(true, 0x2, size, Buffer.alloc(4)), Buffer.alloc(size)]));
    await deviceClosed;
    await until(() => th.hub.activeStreams === 0, 5000, 'stream gone');
    svc.close();
    await d.close();
  });

  it('refuses stream requests past the configured rate with 429', async () => {
    const th = await startTestHub({ streamRatePerSecond: 0.001, streamRateBurst: 1 });
    hubs.push(th);
    const d = await echoDevice(th.addDevice('dev-rate'));
    const svc = ServiceClient.fromConnectionString(th.serviceString);
    const s = await svc.createStream('dev-rate', 'a');
    const err = await svc.createStream('dev-rate', 'b').catch((e: unknown) => e);
    expect(hasCode(err, 'ERR_RATE_LIMITED')).toBe(true);
    s.transport.close();
    svc.close();
    await d.close();
  });

  it('closes an unpaired side after the pair timeout', async () => {
    const th = await startTestHub({ streamPairTimeoutMs: 300 });
    hubs.push(th);
    const d = DeviceClient.fromConnectionString(th.addDevice('dev-lonely'));
    d.on('streamRequest', (req) => {
      // accept but never open the device side
      (req as unknown as { answer(a: boolean): void }).answer(true);
    });
    await d.open();
    const svc = ServiceClient.fromConnectionString(th.serviceString);
    const s = await svc.createStream('dev-lonely', 's');
    const closed = await new Promise<Error | undefined>((resolve) =>
      s.transport.attach({ onMessage() {}, onDrain() {}, onClose: resolve }),
    );
    expect(closed?.message).toContain('ERR_STREAM_PAIR_TIMEOUT');
    svc.close();
    await d.close();
  });

  it('works over TLS with a self-signed certificate and refuses plain ws off loopback', async () => {
    const dir = tempDir();
    const { cert, key } = createSelfSignedCertificate(dir, '127.0.0.1');
    const th = await startTestHub({ dataDir: dir, tls: { cert, key } });
    hubs.push(th);
    expect(th.serviceString).not.toContain('Transport=ws');
    const d = DeviceClient.fromConnectionString(th.addDevice('dev-tls'), { ca: cert });
    d.on('streamRequest', (req) => void req.accept().then((t) => t.attach({ onMessage: (m) => t.send([m]), onDrain() {}, onClose() {} })));
    await d.open();
    const svc = ServiceClient.fromConnectionString(th.serviceString, { ca: cert });
    const s = await svc.createStream('dev-tls', 's');
    expect(s.transport.url).toMatch(/^wss:/);
    const reply = nextMessage(s.transport);
    s.transport.send([Buffer.from('over tls')]);
    expect((await reply).toString()).toBe('over tls');
    s.transport.close();
    svc.close();
    await d.close();
    // without the CA the client refuses the certificate
    const bad = ServiceClient.fromConnectionString(th.serviceString);
    expect(await bad.createStream('dev-tls', 's').catch((e: { code: string }) => e.code)).toBe('ERR_HUB_UNAVAILABLE');
    bad.close();
    await expect(Hub.start({ dataDir: dir, host: '0.0.0.0', port: 0 })).rejects.toMatchObject({ code: 'ERR_CONFIG' });
    await th.close();
    rmSync(dir, { recursive: true, force: true });
  });
});
