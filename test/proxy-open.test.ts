// How the service proxy opens a forwarded connection's channel: the client's first bytes ride in
// the OPEN's transport message; a target that speaks first, and a client that resets at once,
// are served as before.
import net from 'node:net';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { FrameType, HEADER_SIZE } from '../src/mux/constants.js';
import { Session } from '../src/mux/index.js';
import { AllowList, type ConnectionEvent, ServiceProxy, SessionSource, deviceChannelHandler, parseForward } from '../src/proxy/index.js';
import { createMemoryTransportPair } from '../src/transport/memory.js';
import { DelegatingTransport } from './helpers/delegating-transport.js';
import { echoRoundTrip, startEchoServer, type Target } from './helpers/targets.js';
import { randomBytes, sha256 } from './helpers/session-pair.js';
import { until } from './helpers/until.js';

/** Remembers the frame types of every message sent, one list per message. */
class RecordingTransport extends DelegatingTransport {
  readonly messages: number[][] = [];
  override send(parts: readonly Buffer[]): boolean {
    const buf = Buffer.concat(parts);
    const types: number[] = [];
    for (let at = 0; at + HEADER_SIZE <= buf.length; at += HEADER_SIZE + buf.readUInt32BE(at + 6)) types.push(buf[at]!);
    this.messages.push(types);
    return super.send(parts);
  }
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A service proxy forwarding to `target` through a memory-transport session to a device handler. */
async function setup(target: Target) {
  const [a, b] = createMemoryTransportPair();
  const recorder = new RecordingTransport(a);
  const deviceRecorder = new RecordingTransport(b);
  const device = new Session(deviceRecorder, {
    role: 'responder',
    onOpen: deviceChannelHandler({ allow: new AllowList([`127.0.0.1:${target.port}`]) }),
  });
  const service = new Session(recorder, { role: 'initiator', keepaliveIntervalMs: 0 });
  cleanups.push(() => {
    service.close();
    device.close();
  });
  const events: ConnectionEvent[] = [];
  const proxy = new ServiceProxy({
    source: new SessionSource({ open: async () => service }),
    forwards: [parseForward(`0:127.0.0.1:${target.port}`)],
    onConnection: (e) => events.push(e),
  });
  const [listener] = await proxy.start();
  cleanups.push(() => proxy.stop());
  return { port: listener!.port, recorder, deviceRecorder, service, device, proxy, events };
}

/** Connects, writes `first` on connect, and resolves with the first bytes that come back. */
async function firstReply(port: number, first?: Buffer): Promise<Buffer> {
  const s = net.connect({ port, host: '127.0.0.1', noDelay: true });
  cleanups.push(() => void s.destroy());
  s.on('error', () => {}); // the test asserts on what arrives; a reset at cleanup is no finding
  if (first) s.once('connect', () => s.write(first));
  const [data] = (await once(s, 'data')) as [Buffer];
  s.destroy();
  return data;
}

describe('opening a forwarded connection', () => {
  it("sends a client's first bytes in the same transport message as the channel's OPEN", async () => {
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    const { port, recorder } = await setup(echo);
    await firstReply(port, Buffer.from('hello')); // warm: the session is open
    const before = recorder.messages.length;
    expect((await firstReply(port, Buffer.from('ping'))).toString()).toBe('ping');
    const sent = recorder.messages.slice(before);
    const withOpen = sent.filter((types) => types.includes(FrameType.OPEN));
    expect(withOpen).toHaveLength(1);
    expect(withOpen[0]).toContain(FrameType.DATA);
  });

  it('carries every byte of clients that write and half-close at once, read partly before the OPEN and partly after', async () => {
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    const { port } = await setup(echo);
    const payloads = [1, 100, 70_000, 1024 * 1024].map((n) => randomBytes(n));
    for (const p of payloads) expect(await echoRoundTrip(port, p)).toEqual({ hash: sha256(p), bytes: p.length });
  });

  it("has the device's ACCEPT leave in one message with the target's first answer", async () => {
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    const { port, deviceRecorder } = await setup(echo);
    await firstReply(port, Buffer.from('hello')); // warm: the session is open
    const before = deviceRecorder.messages.length;
    expect((await firstReply(port, Buffer.from('ping'))).toString()).toBe('ping');
    const withAccept = deviceRecorder.messages.slice(before).filter((types) => types.includes(FrameType.ACCEPT));
    expect(withAccept).toHaveLength(1);
    expect(withAccept[0]).toContain(FrameType.DATA);
  });

  it('leaves the bridge reading into the shared buffer after the first bytes were read before the OPEN', async () => {
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    const { port, proxy } = await setup(echo);
    const s = net.connect({ port, host: '127.0.0.1' });
    cleanups.push(() => void s.destroy());
    s.once('connect', () => s.write('first'));
    await once(s, 'data');
    const [accepted] = (proxy as unknown as { sockets: Set<net.Socket> }).sockets;
    // What Node's `onread` option sets (src/util/owned-reads.ts): a socket read the ordinary way has it null.
    const kBuffer = Object.getOwnPropertySymbols(accepted!).find((k) => k.description === 'kBuffer')!;
    expect((accepted as unknown as Record<symbol, unknown>)[kBuffer]).toBeInstanceOf(Buffer);
  });

  it('opens the channel for a client that waits for the target to speak first', async () => {
    const server = net.createServer((s) => {
      s.on('error', () => {}); // the client may reset once it has the banner
      s.end('banner\r\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { port } = await setup({ port: (server.address() as net.AddressInfo).port, close: async () => {} });
    expect((await firstReply(port)).toString()).toBe('banner\r\n');
  });

  it('leaves no channel open on either side after a client that resets right after connecting', async () => {
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    const { port, service, device, proxy, events } = await setup(echo);
    await firstReply(port, Buffer.from('hello'));
    for (let i = 0; i < 5; i++) {
      const s = net.connect({ port, host: '127.0.0.1' });
      s.on('error', () => {});
      s.once('connect', () => s.resetAndDestroy());
      await once(s, 'close');
    }
    await until(() => proxy.connectionCount === 0 && service.channelCount === 0 && device.channelCount === 0);
    // Every connection is told once, whether its channel was opened (then closed) or never asked for.
    expect(events.filter((e) => e.outcome !== 'opened')).toHaveLength(6);
  });
});
