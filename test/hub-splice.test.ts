/**
 * The hub's frame splice (src/hub/splice.ts) against a raw client on one side, so the frames
 * are exactly what a test writes: fragmented and masked frames split at odd places, pings,
 * close codes, protocol violations, a malformed upgrade, a side that just drops TCP.
 */
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { startTestHub, until, DeviceClient, ServiceClient, type TestHub } from './helpers/hub.js';
import { tryUpgrade } from './helpers/raw.js';
import { openStreamTransport } from '../src/sdk/index.js';
import { Hub } from '../src/hub/index.js';
import { DEFAULT_RELAY_READ_BYTES } from '../src/hub/config.js';
import { sharedReadBuffer } from '../src/util/shared-read-buffer.js';

type MaskKind = 'random' | 'zero' | 'none';

/** A client-to-server frame as RFC 6455 lays it out. */
function clientFrame(
  opcode: number,
  payload: Buffer,
  o: { fin?: boolean; rsv?: number; mask?: MaskKind; declaredLength?: number } = {},
): Buffer {
  const fin = o.fin ?? true;
  const mask = o.mask ?? 'random';
  const length = o.declaredLength ?? payload.length;
  const head: number[] = [(fin ? 0x80 : 0) | ((o.rsv ?? 0) << 4) | opcode];
  const maskBit = mask === 'none' ? 0 : 0x80;
  if (length < 126) head.push(maskBit | length);
  else if (length < 0x10000) head.push(maskBit | 126, length >> 8, length & 0xff);
  else {
    head.push(maskBit | 127, 0, 0, 0, 0);
    head.push((length >>> 24) & 0xff, (length >>> 16) & 0xff, (length >>> 8) & 0xff, length & 0xff);
  }
  if (mask === 'none') return Buffer.concat([Buffer.from(head), payload]);
  const key = mask === 'zero' ? Buffer.alloc(4) : randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i]! ^= key[i & 3]!;
  return Buffer.concat([Buffer.from(head), key, body]);
}

function closePayload(code: number, reason = ''): Buffer {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code, 0);
  b.write(reason, 2);
  return b;
}

interface ServerFrame {
  fin: boolean;
  opcode: number;
  payload: Buffer;
  masked: boolean;
}

/** The service side as a raw TCP socket that did the WebSocket handshake itself. */
class RawSide {
  frames: ServerFrame[] = [];
  ended = false;
  private buf = Buffer.alloc(0);

  constructor(readonly socket: net.Socket) {
    socket.on('data', (c: Buffer) => this.onData(c));
    socket.on('end', () => (this.ended = true));
    socket.on('close', () => (this.ended = true));
    socket.on('error', () => {});
  }

  static async open(url: string, token: string, headers: Record<string, string> = {}): Promise<RawSide> {
    const u = new URL(url);
    const socket = net.connect(Number(u.port), u.hostname);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    const lines = [
      `GET ${u.pathname} HTTP/1.1`,
      `Host: ${u.host}`,
      'Upgrade: websocket',
      'Connection: Upgrade',
      'Sec-WebSocket-Version: 13',
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
      `Authorization: Bearer ${token}`,
    ];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    let got = Buffer.alloc(0);
    const rest = await new Promise<Buffer>((resolve, reject) => {
      const onData = (c: Buffer): void => {
        got = Buffer.concat([got, c]);
        const end = got.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        const head = got.subarray(0, end).toString();
        if (!head.startsWith('HTTP/1.1 101')) reject(new Error(`no upgrade: ${head.split('\r\n')[0]}`));
        else resolve(got.subarray(end + 4));
      };
      socket.on('data', onData);
    });
    const side = new RawSide(socket);
    if (rest.length > 0) side.onData(rest);
    return side;
  }

  write(b: Buffer): void {
    this.socket.write(b);
  }

  /** Writes `b` in small pieces of 1..max bytes, each in its own socket write and tick. */
  async dribble(b: Buffer, max = 700): Promise<void> {
    for (let at = 0; at < b.length; ) {
      const n = 1 + Math.floor(Math.random() * max);
      this.socket.write(b.subarray(at, at + n));
      at += n;
      await new Promise((r) => setImmediate(r));
    }
  }

  private onData(c: Buffer): void {
    this.buf = Buffer.concat([this.buf, c]);
    for (;;) {
      if (this.buf.length < 2) return;
      const masked = (this.buf[1]! & 0x80) !== 0;
      let len = this.buf[1]! & 0x7f;
      let at = 2;
      if (len === 126) {
        if (this.buf.length < 4) return;
        len = this.buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (this.buf.length < 10) return;
        len = this.buf.readUInt32BE(6);
        at = 10;
      }
      if (masked) at += 4;
      if (this.buf.length < at + len) return;
      this.frames.push({
        fin: (this.buf[0]! & 0x80) !== 0,
        opcode: this.buf[0]! & 0x0f,
        payload: Buffer.from(this.buf.subarray(at, at + len)),
        masked,
      });
      this.buf = this.buf.subarray(at + len);
    }
  }

  async nextFrame(opcode: number, timeoutMs = 5000): Promise<ServerFrame> {
    await until(() => this.frames.some((f) => f.opcode === opcode), timeoutMs, `a frame with opcode ${opcode}`);
    const i = this.frames.findIndex((f) => f.opcode === opcode);
    return this.frames.splice(i, 1)[0]!;
  }
}

interface DeviceEnd {
  ws: WebSocket;
  messages: { data: Buffer; isBinary: boolean }[];
  closed: Promise<{ code: number; reason: string }>;
}

describe('hub frame splice', () => {
  const hubs: TestHub[] = [];
  const clients: { close(): unknown }[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    for (const h of hubs.splice(0)) await h.close();
  });

  /** A hub, a device whose stream side is a plain `ws` socket, and the service's grant. */
  async function pair(
    id: string,
    opts: Parameters<typeof startTestHub>[0] = {},
  ): Promise<{ th: TestHub; device: Promise<DeviceEnd>; url: string; token: string; streamId: string }> {
    const { th, device: g, service: grant } = await rawGrants(id, opts);
    // The device side is a plain `ws` client (not the SDK's binary-only transport), so text
    // frames and close reasons are seen as they arrive.
    const ws = new WebSocket(g.url, { perMessageDeflate: false, headers: { authorization: `Bearer ${g.token}` } });
    const end: DeviceEnd = {
      ws,
      messages: [],
      closed: new Promise((done) => ws.on('close', (code: number, reason: Buffer) => done({ code, reason: reason.toString() }))),
    };
    ws.on('message', (data: Buffer, isBinary: boolean) => end.messages.push({ data, isBinary }));
    ws.on('error', () => {});
    const device = new Promise<DeviceEnd>((resolve) => ws.once('open', () => resolve(end)));
    return { th, device, url: grant.url, token: grant.authorizationToken, streamId: grant.streamId };
  }

  /**
   * A hub and both sides' grants for one stream, neither side connected: the device accepts
   * without opening its socket, so a test can open either side raw, in either order.
   */
  async function rawGrants(
    id: string,
    opts: Parameters<typeof startTestHub>[0] = {},
  ): Promise<{
    th: TestHub;
    device: { url: string; token: string };
    service: { url: string; authorizationToken: string; streamId: string };
  }> {
    const th = await startTestHub(opts);
    hubs.push(th);
    const d = DeviceClient.fromConnectionString(th.addDevice(id));
    clients.push(d);
    const deviceGrant = new Promise<{ url: string; token: string }>((resolve) => {
      d.on('streamRequest', (req) => {
        const r = req as unknown as { answer(accept: boolean): void; msg: { url: string; authorizationToken: string } };
        r.answer(true);
        resolve({ url: r.msg.url, token: r.msg.authorizationToken });
      });
    });
    await d.open();
    const svc = ServiceClient.fromConnectionString(th.serviceString);
    clients.push(svc);
    const grant = await svc.requestStream(id, 's');
    return { th, device: await deviceGrant, service: grant };
  }

  it('relays fragmented and masked frames split at odd places unchanged, and answers unmasked', async () => {
    const { device, url, token } = await pair('dev-frames');
    const raw = await RawSide.open(url, token);
    const dev = await device;
    const big = randomBytes(66_000); // 8-byte length form, under the relay limit (66,560)
    const zeroMasked = randomBytes(3000);
    const stream = Buffer.concat([
      clientFrame(0x1, Buffer.from('hel'), { fin: false }),
      clientFrame(0xa, Buffer.from('unsolicited pong')), // a control frame between fragments
      clientFrame(0x0, Buffer.from('lo'), { fin: true }),
      clientFrame(0x2, big),
      clientFrame(0x2, zeroMasked, { mask: 'zero' }),
      clientFrame(0x2, Buffer.alloc(0)),
    ]);
    await raw.dribble(stream);
    await until(
      () => dev.messages.length === 4,
      5000,
      `four messages at the device (got ${JSON.stringify(dev.messages.map((m) => [m.isBinary, m.data.length]))})`,
    );
    expect(dev.messages[0]).toEqual({ data: Buffer.from('hello'), isBinary: false });
    expect(dev.messages[1]!.isBinary).toBe(true);
    expect(dev.messages[1]!.data.equals(big)).toBe(true);
    expect(dev.messages[2]!.data.equals(zeroMasked)).toBe(true);
    expect(dev.messages[3]!.data.length).toBe(0);
    // The other way: the device's (masked) frame reaches the raw client unmasked.
    const back = randomBytes(66_000);
    dev.ws.send(back);
    const f = await raw.nextFrame(0x2);
    expect(f.masked).toBe(false);
    expect(f.fin).toBe(true);
    expect(f.payload.equals(back)).toBe(true);
    raw.socket.destroy();
  });

  it('passes a frame that came in one read on whole: every length form and mask, both ways, between split frames', async () => {
    const { device, url, token } = await pair('dev-whole');
    const raw = await RawSide.open(url, token);
    const dev = await device;
    // One frame per write, each waited for, so each is one read at the hub (its short cut).
    const cases: Array<[number, Buffer, MaskKind]> = [
      [0x2, randomBytes(1), 'random'],
      [0x2, randomBytes(125), 'random'],
      [0x2, randomBytes(126), 'zero'],
      [0x1, Buffer.from('a text message in one frame'), 'random'],
      [0x2, randomBytes(3000), 'random'],
      [0x2, randomBytes(65_535), 'random'],
      [0x2, Buffer.alloc(0), 'random'],
    ];
    let want = 0;
    for (const [opcode, payload, mask] of cases) {
      raw.write(clientFrame(opcode, payload, { mask }));
      want++;
      await until(() => dev.messages.length === want, 5000, `message ${want} at the device`);
      expect(dev.messages[want - 1]).toEqual({ data: payload, isBinary: opcode === 0x2 });
    }
    // A frame split across reads, then whole ones again: the reader's state is kept between.
    const split = clientFrame(0x2, randomBytes(900));
    raw.write(split.subarray(0, 10));
    await new Promise((r) => setTimeout(r, 20));
    raw.write(split.subarray(10));
    raw.write(clientFrame(0x2, Buffer.from('after the split one')));
    await until(() => dev.messages.length === want + 2, 5000, 'the split frame and the one after it');
    expect(dev.messages[want]!.data.length).toBe(900);
    expect(dev.messages[want + 1]!.data.toString()).toBe('after the split one');
    // The other way, from ws (random masking keys): small frames reach the raw side unmasked.
    for (const size of [1, 125, 126, 4000]) {
      const back = randomBytes(size);
      dev.ws.send(back);
      const f = await raw.nextFrame(0x2);
      expect(f.masked).toBe(false);
      expect(f.payload.equals(back)).toBe(true);
    }
    raw.socket.destroy();
  });

  it('answers pings itself and relays nothing for them', async () => {
    const { device, url, token } = await pair('dev-ping');
    const raw = await RawSide.open(url, token);
    const dev = await device;
    raw.write(clientFrame(0x9, Buffer.from('are you there')));
    const pong = await raw.nextFrame(0xa);
    expect(pong.payload.toString()).toBe('are you there');
    raw.write(clientFrame(0x2, Buffer.from('after')));
    await until(() => dev.messages.length === 1, 5000, 'one message');
    expect(dev.messages[0]!.data.toString()).toBe('after');
    raw.socket.destroy();
  });

  it('answers a close frame and passes its code and reason to the other side', async () => {
    const { th, device, url, token } = await pair('dev-close');
    const raw = await RawSide.open(url, token);
    const dev = await device;
    raw.write(clientFrame(0x8, closePayload(4000, 'bye')));
    const echo = await raw.nextFrame(0x8);
    expect(echo.payload.readUInt16BE(0)).toBe(4000);
    await until(() => raw.ended, 5000, 'hub ended the raw socket after the handshake');
    expect(await dev.closed).toEqual({ code: 1001, reason: 'peer service closed (4000 bye)' });
    await until(() => th.hub.activeStreams === 0, 5000, 'stream gone');
  });

  it('passes a normal close from the device side on as a normal close', async () => {
    const { device, url, token } = await pair('dev-close2');
    const raw = await RawSide.open(url, token);
    const dev = await device;
    dev.ws.close(1000, 'done');
    const f = await raw.nextFrame(0x8);
    expect(f.payload.readUInt16BE(0)).toBe(1000);
    expect(f.payload.subarray(2).toString()).toBe('peer device closed (1000 done)');
    raw.write(clientFrame(0x8, closePayload(1000)));
    await until(() => raw.ended, 5000, 'hub ended the raw socket');
    expect((await dev.closed).code).toBe(1000);
  });

  it.each([
    ['an unmasked frame', clientFrame(0x2, Buffer.from('x'), { mask: 'none' }), 1002],
    ['reserved bits', clientFrame(0x2, Buffer.from('x'), { rsv: 4 }), 1002],
    ['an unknown opcode', clientFrame(0x3, Buffer.from('x')), 1002],
    ['a fragmented control frame', clientFrame(0x9, Buffer.from('x'), { fin: false }), 1002],
    ['a control frame over 125 bytes', clientFrame(0x9, Buffer.alloc(126)), 1002],
    ['a frame over the relay limit (declared, never sent)', clientFrame(0x2, Buffer.alloc(0), { declaredLength: 200_000 }), 1009],
    ['a continuation frame outside a fragmented message', clientFrame(0x0, Buffer.from('x')), 1002],
    [
      'a new message inside a fragmented one',
      Buffer.concat([clientFrame(0x2, Buffer.from('a'), { fin: false }), clientFrame(0x2, Buffer.from('b'))]),
      1002,
    ],
    ['a close frame with an invalid code', clientFrame(0x8, closePayload(1006)), 1002],
    ['a close frame with a 1-byte payload', clientFrame(0x8, Buffer.from([3])), 1002],
  ])('fails a side that sends %s, and tells the other side', async (_what, frame, code) => {
    const { th, device, url, token } = await pair('dev-bad');
    const raw = await RawSide.open(url, token);
    const dev = await device;
    raw.write(frame);
    const f = await raw.nextFrame(0x8);
    expect(f.payload.readUInt16BE(0)).toBe(code);
    await until(() => raw.ended, 5000, 'hub ended the offending socket');
    const closed = await dev.closed;
    expect(closed.code).toBe(1001);
    expect(closed.reason).toContain('peer service broke the protocol');
    expect(dev.messages).toHaveLength(0);
    await until(() => th.hub.activeStreams === 0, 5000, 'stream gone');
  });

  it('tells the other side when a side drops TCP without a close frame', async () => {
    const { device, url, token } = await pair('dev-drop');
    const raw = await RawSide.open(url, token);
    const dev = await device;
    raw.socket.end();
    expect(await dev.closed).toEqual({ code: 1001, reason: 'peer service went away' });
  });

  it('refuses a malformed upgrade with 400 before using up the stream token', async () => {
    const { th, device, url, token } = await pair('dev-upgrade');
    const path = new URL(url).pathname;
    const port = th.hub.port;
    const bad: Record<string, string>[] = [{ 'sec-websocket-key': 'short' }, { 'sec-websocket-version': '8' }];
    for (const headers of bad) {
      const r = await tryUpgrade(port, path, { authorization: `Bearer ${token}`, ...headers });
      expect(r.status).toBe(400);
      expect(r.body?.code).toBe('ERR_BAD_REQUEST');
    }
    // The token still works for a proper handshake.
    const t = await openStreamTransport(url, token);
    const dev = await device;
    t.send([Buffer.from('ok')]);
    await until(() => dev.messages.length === 1, 5000, 'message through the stream');
    t.close();
  });
  it('cuts a long close reason on a character boundary, so the other side gets valid UTF-8', async () => {
    const { device, url, token } = await pair('dev-utf8');
    const raw = await RawSide.open(url, token);
    const dev = await device;
    raw.write(clientFrame(0x8, closePayload(4000, '€'.repeat(40))));
    const closed = await dev.closed; // a validating client would fail with 1006/1007 on a broken character
    expect(closed.code).toBe(1001);
    expect(closed.reason.startsWith('peer service closed (4000 €€')).toBe(true);
    expect(Buffer.byteLength(closed.reason)).toBeLessThanOrEqual(123);
    raw.socket.destroy();
  });

  it('forgets a stream that ends on data sent before its partner arrived', async () => {
    const { th, device: g, service: grant } = await rawGrants('dev-early');
    // The device side arrives first and says goodbye at once; the service comes after.
    const raw = await RawSide.open(g.url, g.token);
    raw.write(clientFrame(0x8, closePayload(1000, 'never mind')));
    await until(() => th.hub.streamStats(grant.streamId) === undefined && th.hub.activeStreams === 0, 5000, 'nothing active yet');
    const t = await openStreamTransport(grant.url, grant.authorizationToken);
    const closed = await new Promise<Error | undefined>((resolve) => t.attach({ onMessage() {}, onDrain() {}, onClose: resolve }));
    expect(closed).toBeUndefined(); // an orderly close, passed on
    await until(() => th.hub.activeStreams === 0, 5000, 'the ended stream forgotten');
    expect(th.hub.streamStats(grant.streamId)).toBeUndefined();
    raw.socket.destroy();
  });

  it('does not queue pongs for a side that sends pings and never reads', async () => {
    const high = 256 * 1024;
    const { th, device, url, token, streamId } = await pair('dev-pingflood', { relayHighWater: high });
    const raw = await RawSide.open(url, token);
    await device;
    raw.socket.pause(); // never reads: the kernel's buffers fill, then the hub's queue would
    const ping = clientFrame(0x9, Buffer.alloc(125, 1), { mask: 'zero' });
    const burst = Buffer.concat(Array.from({ length: 1000 }, () => ping)); // 131 KB of pings
    for (let i = 0; i < 200; i++) {
      if (!raw.socket.write(burst)) await new Promise((r) => raw.socket.once('drain', r));
    }
    const stats = th.hub.streamStats(streamId)!;
    // Pongs stop once the queue is past the mark: at most the pongs of one socket read beyond it.
    expect(stats.bufferedToService).toBeLessThanOrEqual(high + DEFAULT_RELAY_READ_BYTES);
    raw.socket.destroy();
  });

  it('cuts off a side that did the close handshake but keeps its TCP connection open', async () => {
    const { device, url, token } = await pair('dev-linger');
    const raw = await RawSide.open(url, token);
    const dev = await device;
    raw.socket.allowHalfOpen = true; // never sends FIN of its own
    raw.write(clientFrame(0x8, closePayload(1000)));
    await raw.nextFrame(0x8); // the hub's answer
    await until(() => raw.ended, 5000, 'the hub to send FIN');
    expect((await dev.closed).code).toBe(1000);
    // The hub gives it CLOSE_ANSWER_MS (5 s) and then closes the socket for good: a write after
    // that meets a closed socket (reset), where a lingering one would just take it.
    await new Promise((r) => setTimeout(r, 5500));
    const closed = new Promise<void>((resolve) => raw.socket.once('close', () => resolve()));
    raw.socket.write(clientFrame(0x2, Buffer.from('anyone?')));
    setTimeout(() => raw.socket.write(clientFrame(0x2, Buffer.from('anyone?'))), 100);
    await closed;
  }, 15_000);

  it('echoes the first offered subprotocol, as ws servers do', async () => {
    const { device, url, token } = await pair('dev-proto');
    const ws = new WebSocket(url, ['devstreams.v1', 'other'], { perMessageDeflate: false, headers: { authorization: `Bearer ${token}` } });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    expect(ws.protocol).toBe('devstreams.v1');
    await device;
    ws.terminate();
  });

  it("refuses a relay high-water mark below the socket's own (16 KiB)", async () => {
    await expect(Hub.start({ dataDir: '/nonexistent-devstreams', host: '127.0.0.1', port: 0, relayHighWater: 1000 })).rejects.toMatchObject(
      { code: 'ERR_CONFIG' },
    );
  });

  /** Whether the hub's socket for each side of `streamId` reads into a buffer it owns (Node's `onread` field, src/util/owned-reads.ts). */
  function hubReadsOwned(th: TestHub, streamId: string): boolean[] {
    const pairer = (th.hub as unknown as { pairer: { splices: Map<string, Record<'device' | 'service', { socket: net.Socket }>> } }).pairer;
    const splice = pairer.splices.get(streamId)!;
    return (['device', 'service'] as const).map((side) => {
      const socket = splice[side].socket;
      const kBuffer = Object.getOwnPropertySymbols(socket).find((k) => k.description === 'kBuffer')!;
      return (socket as unknown as Record<symbol, unknown>)[kBuffer] instanceof Buffer;
    });
  }

  it('reads both sides of a plain stream into the shared buffer, or the ordinary way with relayReadBytes 0, and relays the same bytes', async () => {
    for (const relayReadBytes of [undefined, 0]) {
      const { th, device: g, service: grant } = await rawGrants(`dev-owned-${relayReadBytes ?? 'default'}`, { relayReadBytes });
      const dev = await RawSide.open(g.url, g.token);
      const service = await RawSide.open(grant.url, grant.authorizationToken);
      await until(() => th.hub.activeStreams === 1, 5000, 'paired');
      expect(hubReadsOwned(th, grant.streamId)).toEqual(relayReadBytes === 0 ? [false, false] : [true, true]);
      // Frames larger than one read, sent in one write each way: every byte arrives, in order.
      const payloads = Array.from({ length: 6 }, () => randomBytes(60_000));
      dev.write(Buffer.concat(payloads.map((p) => clientFrame(0x2, p, { mask: 'zero' }))));
      service.write(Buffer.concat(payloads.map((p) => clientFrame(0x2, p))));
      for (const [side, name] of [
        [service, 'service'],
        [dev, 'device'],
      ] as const) {
        await until(() => side.frames.filter((f) => f.opcode === 0x2).length === payloads.length, 5000, `frames at the ${name}`);
        expect(side.frames.filter((f) => f.opcode === 0x2).every((f, i) => f.payload.equals(payloads[i]!))).toBe(true);
      }
      dev.socket.destroy();
      service.socket.destroy();
    }
  });

  it('a side quiet after large reads gives its fresh read buffer back, and relays on byte for byte', async () => {
    // A 4 KiB read buffer: a frame of 3000 bytes written at once is one read, a large one.
    const bytes = 4096;
    const { th, device: g, service: grant } = await rawGrants('dev-idle-buffer', { relayReadBytes: bytes, relayIdleReadBufferMs: 50 });
    const dev = await RawSide.open(g.url, g.token);
    const service = await RawSide.open(grant.url, grant.authorizationToken);
    await until(() => th.hub.activeStreams === 1, 5000, 'paired');
    const pairer = (th.hub as unknown as { pairer: { splices: Map<string, Record<'device', { socket: net.Socket }>> } }).pairer;
    const socket = pairer.splices.get(grant.streamId)!.device.socket;
    const kBuffer = Object.getOwnPropertySymbols(socket).find((k) => k.description === 'kBuffer')!;
    const readBuffer = (): unknown => (socket as unknown as Record<symbol, unknown>)[kBuffer];
    const shared = sharedReadBuffer(bytes);
    const payloads: Buffer[] = [];
    const send = async (n: number): Promise<void> => {
      payloads.push(randomBytes(n));
      dev.write(clientFrame(0x2, payloads.at(-1)!, { mask: 'zero' }));
      await until(() => service.frames.length === payloads.length, 5000, `frame ${payloads.length} at the service`);
    };
    // The first large read (into the shared buffer) hands the socket a fresh buffer for its next.
    await send(3000);
    await send(3000);
    // Quiet: it reads into the shared buffer again.
    await until(() => readBuffer() === shared, 10_000, "the quiet side reading into the hub's shared buffer again");
    for (const n of [3000, 3000, 100, 3000]) await send(n);
    expect(service.frames.every((f, i) => f.opcode === 0x2 && f.payload.equals(payloads[i]!))).toBe(true);
    dev.socket.destroy();
    service.socket.destroy();
  });

  it('never puts a pong inside a data frame it is still relaying to the same side', async () => {
    const { th, device: g, service: grant } = await rawGrants('dev-interleave');
    const dev = await RawSide.open(g.url, g.token);
    const service = await RawSide.open(grant.url, grant.authorizationToken);
    await until(() => th.hub.activeStreams === 1, 5000, 'paired');
    // The device sends half a frame; the service pings meanwhile; then the rest of the frame.
    const payload = randomBytes(40_000);
    const frame = clientFrame(0x2, payload);
    dev.write(frame.subarray(0, 20_000));
    await until(() => th.hub.streamStats(grant.streamId)!.bytesRelayed > 0, 5000, 'half a frame relayed');
    service.write(clientFrame(0x9, Buffer.from('mid-frame')));
    // Kept: the ping must reach the hub before the rest of the frame, and the only sign it has
    // (the pong) is what the hub must hold back until the frame is done.
    await new Promise((r) => setTimeout(r, 50));
    dev.write(frame.subarray(20_000));
    const data = await service.nextFrame(0x2);
    expect(data.payload.equals(payload)).toBe(true);
    const pong = await service.nextFrame(0xa);
    expect(pong.payload.toString()).toBe('mid-frame');
    dev.socket.destroy();
    service.socket.destroy();
  });
});
