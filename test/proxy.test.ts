import net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { Session } from '../src/mux/index.js';
import { TcpTransport, connectTcpTransport } from '../src/transport/index.js';
import { AllowList, ServiceProxy, SessionSource, parseForward, deviceChannelHandler, parseListen } from '../src/proxy/index.js';
import { closedPort, echoRoundTrip, startEchoServer, type Target } from './helpers/targets.js';
import { randomBytes, sha256 } from './helpers/session-pair.js';
import { createMemoryTransportPair } from '../src/transport/memory.js';
import { until } from './helpers/until.js';

/** A device endpoint without a hub: a TCP listener whose every connection is a device session. */
async function startDevice(allow: string[]): Promise<{ port: number; sessions: Session[]; close(): Promise<void> }> {
  const sessions: Session[] = [];
  const server = net.createServer((socket) => {
    const session = new Session(new TcpTransport(socket), {
      role: 'responder',
      onOpen: deviceChannelHandler({ allow: new AllowList(allow) }),
    });
    sessions.push(session);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    sessions,
    close: async () => {
      for (const s of sessions) s.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup(allow: (echo: Target) => string[], extraForwards: string[] = [], socks = false) {
  const echo = await startEchoServer();
  cleanups.push(() => echo.close());
  const device = await startDevice(allow(echo));
  cleanups.push(() => device.close());
  const sessions: Session[] = [];
  const source = new SessionSource({
    open: async () => {
      const session = new Session(await connectTcpTransport(device.port), { role: 'initiator' });
      sessions.push(session);
      return session;
    },
  });
  const proxy = new ServiceProxy({
    source,
    forwards: [parseForward(`0:127.0.0.1:${echo.port}`), ...extraForwards.map(parseForward)],
    ...(socks ? { socks: parseListen('0', '--socks') } : {}),
  });
  const listeners = await proxy.start();
  cleanups.push(() => proxy.stop());
  return { echo, device, proxy, listeners, sessions, opens: () => sessions.length };
}

describe('local proxies over one device session', () => {
  it('carries 64 concurrent echo connections byte for byte through one session, with half-close', async () => {
    const { listeners, opens } = await setup((e) => [`127.0.0.1:${e.port}`]);
    const port = listeners[0]!.port;
    const payloads = Array.from({ length: 64 }, () => randomBytes(1 + Math.floor(Math.random() * 200_000)));
    const results = await Promise.all(payloads.map((p) => echoRoundTrip(port, p)));
    results.forEach((r, i) => {
      expect(r.bytes).toBe(payloads[i]!.length);
      expect(r.hash).toBe(sha256(payloads[i]!));
    });
    expect(opens()).toBe(1);
  });

  it('refuses a target that is not on the allow list (reset locally, code at the device)', async () => {
    const forbidden = await startEchoServer();
    cleanups.push(() => forbidden.close());
    const { listeners } = await setup((e) => [`127.0.0.1:${e.port}`], [`0:127.0.0.1:${forbidden.port}`]);
    const error = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      const s = net.connect(listeners[1]!.port, '127.0.0.1');
      s.on('error', resolve);
      s.on('close', () => resolve(null));
      s.write('hello');
    });
    expect(error?.code).toBe('ECONNRESET');
  });

  it('answers SOCKS5 CONNECT with the device outcome: success, not allowed, refused', async () => {
    const dead = await closedPort();
    const { listeners, echo } = await setup((e) => [`127.0.0.1:${e.port}`, `127.0.0.1:${dead}`], [], true);
    const socksPort = listeners.find((l) => l.kind === 'socks')!.port;
    const connect = (port: number) =>
      new Promise<{ reply: number; socket: net.Socket }>((resolve, reject) => {
        const s = net.connect(socksPort, '127.0.0.1');
        s.on('error', reject);
        let buf = Buffer.alloc(0);
        s.on('data', function onData(c: Buffer) {
          buf = Buffer.concat([buf, c]);
          if (buf.length >= 12) {
            s.off('data', onData);
            resolve({ reply: buf[3]!, socket: s });
          }
        });
        const req = Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 0]);
        req.writeUInt16BE(port, 11);
        s.write(req);
      });
    const ok = await connect(echo.port);
    expect(ok.reply).toBe(0x00);
    const echoed = new Promise<string>((resolve) => ok.socket.once('data', (c: Buffer) => resolve(c.toString())));
    ok.socket.write('through socks');
    expect(await echoed).toBe('through socks');
    ok.socket.destroy();
    expect((await connect(9)).reply).toBe(0x02);
    expect((await connect(dead)).reply).toBe(0x05);
  });

  it('carries a reset from the target as a reset to the client', async () => {
    const rude = net.createServer((s) => s.once('data', () => s.resetAndDestroy()));
    await new Promise<void>((resolve) => rude.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => rude.close(() => resolve())));
    const rudePort = (rude.address() as net.AddressInfo).port;
    const { listeners } = await setup(() => [`127.0.0.1:${rudePort}`], [`0:127.0.0.1:${rudePort}`]);
    const error = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      const s = net.connect(listeners[1]!.port, '127.0.0.1');
      s.on('error', resolve);
      s.on('close', () => resolve(null));
      s.write('hi');
    });
    expect(error?.code).toBe('ECONNRESET');
  });

  it('opens a new session on the next connection after the device session dies', async () => {
    const { listeners, device, sessions, opens } = await setup((e) => [`127.0.0.1:${e.port}`]);
    const port = listeners[0]!.port;
    const data = randomBytes(10_000);
    expect((await echoRoundTrip(port, data)).hash).toBe(sha256(data));
    const gone = once(sessions[0]!, 'close'); // the service side sees the device end it
    for (const s of device.sessions) s.close();
    await gone;
    expect((await echoRoundTrip(port, data)).hash).toBe(sha256(data));
    expect(opens()).toBe(2);
  });
});

describe('proxies when the device session ends', () => {
  it('closes local connections when the device session closes, instead of leaving them open', async () => {
    // A target that tells us when the device side's connection to it goes away.
    let targetSide: net.Socket | undefined;
    const target = net.createServer((s) => {
      targetSide = s;
      s.on('error', () => {});
      s.pipe(s);
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => target.close(() => resolve())));
    const targetPort = (target.address() as net.AddressInfo).port;
    const { listeners, device } = await setup(() => [`127.0.0.1:${targetPort}`], [`0:127.0.0.1:${targetPort}`]);
    const socket = net.connect(listeners[1]!.port, '127.0.0.1');
    socket.on('error', () => {});
    const echoed = new Promise<void>((resolve) => socket.once('data', () => resolve()));
    socket.write('hello');
    await echoed;
    const targetClosed = new Promise<void>((resolve) => targetSide!.once('close', () => resolve()));
    const clientClosed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    for (const s of device.sessions) s.close(); // a local close: channels end without an error
    await targetClosed;
    await clientClosed;
  });

  it('opens a fresh session for new connections while a retiring one (GOAWAY) drains', async () => {
    const { listeners, device, sessions, opens } = await setup((e) => [`127.0.0.1:${e.port}`]);
    const port = listeners[0]!.port;
    const held = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    held.on('error', () => {});
    const first = new Promise<void>((resolve) => held.once('data', () => resolve()));
    held.write('keep me open');
    await first;
    const retiring = once(sessions[0]!, 'goaway'); // the service side has heard it
    void device.sessions[0]!.goAway('redeploy');
    await retiring;
    const data = randomBytes(20_000);
    expect((await echoRoundTrip(port, data)).hash).toBe(sha256(data));
    expect(opens()).toBe(2);
    held.destroy();
  });
});

describe('flag parsing', () => {
  it('parses forwards like ssh -L and rejects bad ones with the reason', () => {
    expect(parseForward('2222:127.0.0.1:22')).toEqual({ bindHost: '127.0.0.1', localPort: 2222, targetHost: '127.0.0.1', targetPort: 22 });
    expect(parseForward('0.0.0.0:8080:web.local:80')).toEqual({
      bindHost: '0.0.0.0',
      localPort: 8080,
      targetHost: 'web.local',
      targetPort: 80,
    });
    expect(parseForward('[::1]:2222:[fe80::1]:22')).toEqual({ bindHost: '::1', localPort: 2222, targetHost: 'fe80::1', targetPort: 22 });
    expect(() => parseForward('2222:22')).toThrow(/expected \[BIND:\]LPORT:HOST:PORT/);
    expect(() => parseForward('2222:h:99999')).toThrow(/target port/);
  });

  it('matches allow-list entries by exact host, wildcard port and CIDR', () => {
    const allow = new AllowList(['127.0.0.1:22', 'web.local:*', '10.0.0.0/8:502', '[::1]:80']);
    expect(allow.allows('127.0.0.1', 22)).toBe(true);
    expect(allow.allows('127.0.0.1', 23)).toBe(false);
    expect(allow.allows('WEB.local', 8443)).toBe(true);
    expect(allow.allows('10.20.30.40', 502)).toBe(true);
    expect(allow.allows('11.0.0.1', 502)).toBe(false);
    expect(allow.allows('::1', 80)).toBe(true);
    expect(new AllowList([]).allows('127.0.0.1', 22)).toBe(false);
    // An IPv6 CIDR matches IPv6 targets only (Node's BlockList maps IPv4 into ::ffff:0:0/96)...
    const v6 = new AllowList(['::/0:28102', 'fd00::/8:*']);
    expect(v6.allows('::1', 28102)).toBe(true);
    expect(v6.allows('fd12::5', 80)).toBe(true);
    expect(v6.allows('127.0.0.1', 28102)).toBe(false);
    expect(v6.allows('::ffff:127.0.0.1', 28102)).toBe(false);
    expect(v6.allows('[::ffff:7f00:1]', 28102)).toBe(false);
    // ...unless written as IPv4-mapped; an IPv4 rule matches the mapped form of its addresses.
    const mapped = new AllowList(['::ffff:10.0.0.0/104:22', '192.168.1.0/24:80']);
    expect(mapped.allows('10.1.2.3', 22)).toBe(true);
    expect(mapped.allows('::ffff:10.1.2.3', 22)).toBe(true);
    expect(mapped.allows('11.1.2.3', 22)).toBe(false);
    expect(mapped.allows('::ffff:192.168.1.7', 80)).toBe(true);
    expect(mapped.allows('192.168.1.7', 80)).toBe(true);
    expect(() => new AllowList(['nohost'])).toThrow(/missing :PORT/);
    expect(() => new AllowList(['10.0.0.0/40:*'])).toThrow(/prefix/);
  });
});

describe('device channel events', () => {
  it("a channel reset while the device connects to its target is told 'connected' before 'closed'", async () => {
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    const [a, b] = createMemoryTransportPair();
    const outcomes: string[] = [];
    const device = new Session(b, {
      role: 'responder',
      onOpen: deviceChannelHandler({ allow: new AllowList([`127.0.0.1:${echo.port}`]), onChannel: (e) => outcomes.push(e.outcome) }),
    });
    const service = new Session(a, { role: 'initiator' });
    cleanups.push(async () => {
      service.close();
      device.close();
    });
    // OPEN and RESET leave in one message: the device connects, and accepts a channel already reset.
    service.openChannel({ host: '127.0.0.1', port: echo.port }).reset();
    await until(() => outcomes.includes('closed'));
    expect(outcomes).toEqual(['connected', 'closed']);
  });
});
