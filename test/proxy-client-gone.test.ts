// A local client that resets while its channel is still being opened (the device has not
// answered yet, or the device stream is still coming up) must leave no channel behind on either
// side, and its connection must be reported closed: the socket is gone before the bridge joins it.
import net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { Session, type OpenRequest } from '../src/mux/index.js';
import { AllowList, ServiceProxy, SessionSource, deviceChannelHandler, parseForward, parseListen } from '../src/proxy/index.js';
import { createMemoryTransportPair } from '../src/transport/memory.js';
import type { ConnectionEvent } from '../src/proxy/service-proxy.js';
import { startEchoServer } from './helpers/targets.js';
import { until } from './helpers/until.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/**
 * A service proxy (a forward and SOCKS) to an echo target through a memory-transport session; the
 * device answers an OPEN only once `answer()` is called, and the session is handed to the proxy
 * only once `connect()` is called.
 */
async function setup() {
  const echo = await startEchoServer();
  cleanups.push(() => echo.close());
  const handler = deviceChannelHandler({ allow: new AllowList([`127.0.0.1:${echo.port}`]) });
  const held: OpenRequest[] = [];
  let answering = false;
  const [a, b] = createMemoryTransportPair();
  const device = new Session(b, {
    role: 'responder',
    onOpen: (request) => (answering ? handler(request) : held.push(request)),
  });
  const service = new Session(a, { role: 'initiator', keepaliveIntervalMs: 0 });
  cleanups.push(() => {
    service.close();
    device.close();
  });
  let connect!: () => void;
  const connected = new Promise<void>((resolve) => {
    connect = resolve;
  });
  const events: ConnectionEvent[] = [];
  const proxy = new ServiceProxy({
    source: new SessionSource({
      open: async () => {
        await connected;
        return service;
      },
    }),
    forwards: [parseForward(`0:127.0.0.1:${echo.port}`)],
    socks: parseListen('0', '--socks'),
    onConnection: (e) => events.push(e),
  });
  const listeners = await proxy.start();
  cleanups.push(() => proxy.stop());
  const answer = (): void => {
    answering = true;
    for (const r of held.splice(0)) handler(r);
  };
  return { echo, listeners, proxy, service, device, events, held, connect, answer };
}

/** Connects to `port`; resolves once connected. */
async function client(port: number): Promise<net.Socket> {
  const s = net.connect({ port, host: '127.0.0.1' });
  s.on('error', () => {}); // it is reset on purpose
  cleanups.push(() => void s.destroy());
  await once(s, 'connect');
  return s;
}

describe('a local client that resets before its channel is open', () => {
  it('through SOCKS, while the device has not answered the OPEN: no channel is left on either side', async () => {
    const { echo, listeners, proxy, service, device, events, held, connect, answer } = await setup();
    connect();
    const s = await client(listeners.find((l) => l.kind === 'socks')!.port);
    const request = Buffer.from([0x05, 0x01, 0x00, 0x01, 127, 0, 0, 1, echo.port >> 8, echo.port & 0xff]);
    s.write(Buffer.from([0x05, 0x01, 0x00]));
    await once(s, 'data'); // the greeting's answer
    s.write(request);
    await until(() => held.length === 1, 5000, 'the OPEN at the device');
    s.resetAndDestroy();
    await until(() => proxy.connectionCount === 0, 5000, 'the reset seen by the proxy');
    answer();
    await until(() => service.channelCount === 0 && device.channelCount === 0, 5000, 'no channel on either side');
    await until(() => events.some((e) => e.outcome === 'closed'), 5000, "the connection's closing event");
    const ends = events.filter((e) => e.outcome !== 'opened');
    expect(ends).toHaveLength(1);
    expect((ends[0]!.error as { code?: string } | undefined)?.code).toBe('ERR_CHANNEL_RESET');
  });

  it('through a forward, while the device stream is still coming up: no channel is left on either side', async () => {
    const { listeners, proxy, service, device, events, connect, answer } = await setup();
    answer();
    const s = await client(listeners.find((l) => l.kind === 'forward')!.port);
    s.write('first bytes');
    // Let the proxy see the bytes (and ask for the session), then reset before the session is there.
    await new Promise((r) => setTimeout(r, 50));
    s.resetAndDestroy();
    await new Promise((r) => setTimeout(r, 50));
    connect();
    await until(() => proxy.connectionCount === 0, 5000, 'the proxy to let the connection go');
    await until(() => service.channelCount === 0 && device.channelCount === 0, 5000, 'no channel on either side');
    await until(() => events.some((e) => e.outcome !== 'opened'), 5000, "the connection's closing event");
    const ends = events.filter((e) => e.outcome !== 'opened');
    expect(ends).toHaveLength(1);
    expect((ends[0]!.error as { code?: string } | undefined)?.code).toBe('ERR_CHANNEL_RESET');
  });
});
