// A SOCKS5 connection is a TCP connection once the reply is in: the client's half-close ends only
// its direction, and what the target sends back after it still arrives (as on a forward).
import net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { Session } from '../src/mux/index.js';
import { AllowList, ServiceProxy, SessionSource, deviceChannelHandler, parseListen } from '../src/proxy/index.js';
import { createMemoryTransportPair } from '../src/transport/memory.js';
import { randomBytes } from './helpers/session-pair.js';
import { startEchoServer } from './helpers/targets.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe('a SOCKS5 connection', () => {
  it("carries the target's answer after the client half-closes", async () => {
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    const [a, b] = createMemoryTransportPair();
    const device = new Session(b, {
      role: 'responder',
      onOpen: deviceChannelHandler({ allow: new AllowList([`127.0.0.1:${echo.port}`]) }),
    });
    const service = new Session(a, { role: 'initiator', keepaliveIntervalMs: 0 });
    cleanups.push(() => {
      service.close();
      device.close();
    });
    const proxy = new ServiceProxy({
      source: new SessionSource({ open: async () => service }),
      forwards: [],
      socks: parseListen('0', '--socks'),
    });
    const [listener] = await proxy.start();
    cleanups.push(() => proxy.stop());

    const s = net.connect({ port: listener!.port, host: '127.0.0.1', allowHalfOpen: true });
    cleanups.push(() => void s.destroy());
    await once(s, 'connect');
    const got: Buffer[] = [];
    s.on('data', (d: Buffer) => got.push(d));
    // Greeting (no authentication) and CONNECT 127.0.0.1:echo, then wait for both answers (12 bytes).
    s.write(Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, echo.port >> 8, echo.port & 0xff]));
    while (Buffer.concat(got).length < 12) await once(s, 'data');
    expect(Buffer.concat(got)).toEqual(Buffer.from([5, 0, 5, 0, 0, 1, 0, 0, 0, 0, 0, 0]));
    got.length = 0;
    const data = randomBytes(200_000);
    s.end(data);
    await once(s, 'end');
    expect(Buffer.concat(got).equals(data)).toBe(true);
  });
});
