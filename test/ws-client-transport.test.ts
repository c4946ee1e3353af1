// The SDKs' own WebSocket client (src/transport/ws-connect.ts, ws-client-transport.ts): against
// a `ws` server, which checks every frame it gets against RFC 6455, and against raw TCP servers
// that answer what a real server would not.
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { connectWebSocket, type Transport, type WebSocketClientTransport } from '../src/transport/index.js';
import { acceptValue } from '../src/transport/ws-handshake.js';
import { frameHeader } from '../src/transport/ws-frame.js';
import { DevstreamsError } from '../src/errors.js';
import { until } from './helpers/until.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function wsServer(onConnection: (ws: WebSocket) => void): Promise<string> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false, maxPayload: 1 << 20 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  wss.on('connection', onConnection);
  cleanups.push(() => {
    for (const c of wss.clients) c.terminate();
    return new Promise<void>((r) => wss.close(() => r()));
  });
  return `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}/path?x=1`;
}

/**
 * A `ws` server whose socket does not read until `resume()`: what the client sends queues up.
 * Counts the message bytes it gets and remembers the close code.
 */
async function pausedServer(): Promise<{
  url: string;
  connected: () => Promise<void>;
  resume: () => void;
  received: () => number;
  closedWith: () => number | undefined;
}> {
  let socket: net.Socket | undefined;
  let received = 0;
  let closedWith: number | undefined;
  const url = await wsServer((ws) => {
    socket = (ws as unknown as { _socket: net.Socket })._socket;
    socket.pause();
    ws.on('message', (m: Buffer) => (received += m.length));
    ws.on('close', (code) => (closedWith = code));
  });
  return {
    url,
    connected: () => until(() => socket !== undefined, 5000, 'server connection'),
    resume: () => socket!.resume(),
    received: () => received,
    closedWith: () => closedWith,
  };
}

/** Sends `size`-byte messages until `send` returns false (at most `max`); returns the bytes sent. */
function sendUntilRefused(t: Transport, size: number, max: number): { sent: number; refused: boolean } {
  let sent = 0;
  for (let i = 0; i < max; i++) {
    sent += size;
    if (!t.send([Buffer.alloc(size, i)])) return { sent, refused: true };
  }
  return { sent, refused: false };
}

/** A TCP server that reads the upgrade request and answers with `answer(key)`, then runs `after`. */
async function rawServer(answer: (key: string) => Buffer | string | undefined, after?: (socket: net.Socket) => void): Promise<string> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    let head = '';
    const onData = (chunk: Buffer): void => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      const key = /sec-websocket-key: (\S+)/i.exec(head)?.[1] ?? '';
      const out = answer(key);
      if (out !== undefined) socket.write(out);
      after?.(socket);
    };
    socket.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((r) => server.close(() => r()));
  });
  return `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}/`;
}

const upgraded = (key: string): string =>
  `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptValue(key)}\r\n\r\n`;

/** Collects what a transport delivers (parts joined) and how it closed. */
function collect(t: Transport): { messages: Buffer[]; closed: Promise<Error | undefined>; drains: () => number } {
  const messages: Buffer[] = [];
  let drains = 0;
  let onClosed!: (e: Error | undefined) => void;
  const closed = new Promise<Error | undefined>((r) => (onClosed = r));
  t.attach({
    onMessage: (m) => messages.push(Buffer.from(m)),
    onMessageParts: (parts) => messages.push(Buffer.concat(parts)),
    onDrain: () => drains++,
    onClose: (e) => onClosed(e),
  });
  return { messages, closed, drains: () => drains };
}

function codeOf(err: unknown): string | undefined {
  return err instanceof DevstreamsError ? err.code : undefined;
}

describe('WebSocket client transport against a ws server', () => {
  for (const zeroMask of [false, true]) {
    it(`echoes multi-part messages of every size byte for byte (${zeroMask ? 'all-zero' : 'random'} masking key)`, async () => {
      const url = await wsServer((ws) => ws.on('message', (m: Buffer) => ws.send(m)));
      const t = await connectWebSocket(url, { zeroMask, maxMessageSize: 200_000 });
      const got = collect(t);
      const sent: Buffer[] = [];
      for (let i = 0; i < 64; i++) {
        // Around each length encoding's edge, and the small-message path's (4096 bytes).
        const size = [0, 1, 125, 126, 4_094, 65_535, 65_536, 150_000][i % 8]! + (i % 5);
        const whole = randomBytes(size);
        sent.push(whole);
        // Parts of odd lengths, so the masking key's phase moves between parts.
        const cut1 = Math.min(size, 3);
        const cut2 = Math.max(cut1, Math.min(size, Math.floor(size / 2) + 1));
        t.send([whole.subarray(0, cut1), whole.subarray(cut1, cut2), whole.subarray(cut2)]);
        if (i % 2) t.send([]); // an empty message is a message too
        if (i % 2) sent.push(Buffer.alloc(0));
      }
      await until(() => got.messages.length === sent.length, 10_000, 'all echoes');
      // Also shows the caller's buffers were left as they were: masking in place would change `sent`.
      got.messages.forEach((m, i) => expect(m.equals(sent[i]!), `message ${i}`).toBe(true));
      t.close();
      expect(await got.closed).toBeUndefined();
    });
  }

  it('reassembles a fragmented message and answers pings', async () => {
    let pong: Buffer | undefined;
    const url = await wsServer((ws) => {
      ws.on('pong', (p: Buffer) => (pong = p));
      ws.ping(Buffer.from('are you there'));
      ws.send(Buffer.from('frag-'), { fin: false });
      ws.send(Buffer.from('men'), { fin: false });
      ws.ping(Buffer.from('between fragments'));
      ws.send(Buffer.from('ted'), { fin: true });
    });
    const t = await connectWebSocket(url);
    const got = collect(t);
    await until(() => got.messages.length === 1 && pong?.toString() === 'between fragments', 5000, 'message and pong');
    expect(got.messages[0]!.toString()).toBe('frag-mented');
    t.close();
  });

  it('reports the server close code and reason; an orderly close reports none', async () => {
    const url = await wsServer((ws) => ws.on('message', (m: Buffer) => ws.close(Number(m.toString()), 'bye')));
    const a = await connectWebSocket(url);
    const ga = collect(a);
    a.send([Buffer.from('4000')]);
    const err = await ga.closed;
    expect(codeOf(err)).toBe('ERR_TRANSPORT_CLOSED');
    expect(err?.message).toContain('websocket closed with 4000: bye');
    const b = await connectWebSocket(url);
    const gb = collect(b);
    b.send([Buffer.from('1000')]);
    expect(await gb.closed).toBeUndefined();
    expect(b.closed).toBe(true);
  });

  it('closes with 1000, or with 1011 and the error code when closed with an error', async () => {
    const codes: { code: number; reason: string }[] = [];
    const url = await wsServer((ws) => ws.on('close', (code, reason) => codes.push({ code, reason: reason.toString() })));
    const a = await connectWebSocket(url);
    const ga = collect(a);
    a.close();
    expect(await ga.closed).toBeUndefined();
    const b = await connectWebSocket(url);
    const gb = collect(b);
    const why = new DevstreamsError('ERR_SESSION_LOST', 'gone');
    b.close(why);
    expect(await gb.closed).toBe(why);
    await until(() => codes.length === 2, 5000, 'both closes at the server');
    expect(codes).toContainEqual({ code: 1000, reason: '' });
    expect(codes).toContainEqual({ code: 1011, reason: 'ERR_SESSION_LOST' });
    expect(a.send([Buffer.from('late')])).toBe(false);
  });

  it('refuses a text message with ERR_PROTOCOL_FRAME and tells the server 1003', async () => {
    let serverSaw: number | undefined;
    const url = await wsServer((ws) => {
      ws.on('close', (code) => (serverSaw = code));
      ws.send('text is not devstreams');
    });
    const t = await connectWebSocket(url);
    expect(codeOf(await collect(t).closed)).toBe('ERR_PROTOCOL_FRAME');
    await until(() => serverSaw !== undefined, 5000, 'server close');
    expect(serverSaw).toBe(1003);
  });

  it('refuses a message over maxMessageSize before delivering any of it, and tells the server 1009', async () => {
    let serverSaw: number | undefined;
    const url = await wsServer((ws) => {
      ws.on('close', (code) => (serverSaw = code));
      ws.send(Buffer.alloc(2000));
    });
    const t = await connectWebSocket(url, { maxMessageSize: 1000 });
    const got = collect(t);
    expect(codeOf(await got.closed)).toBe('ERR_TRANSPORT_MESSAGE_TOO_LARGE');
    expect(got.messages).toHaveLength(0);
    await until(() => serverSaw !== undefined, 5000, 'server close');
    expect(serverSaw).toBe(1009);
    // Sending a message over the limit closes the transport too, without writing it.
    const u = await connectWebSocket(url, { maxMessageSize: 1000 });
    const gu = collect(u);
    expect(u.send([Buffer.alloc(1001)])).toBe(false);
    expect(codeOf(await gu.closed)).toBe('ERR_TRANSPORT_MESSAGE_TOO_LARGE');
  });

  it("drains a sender blocked below the socket's own buffer mark (a small high-water mark)", async () => {
    const server = await pausedServer();
    const t = await connectWebSocket(server.url, { highWaterMark: 8 * 1024 });
    const got = collect(t);
    await server.connected();
    // Messages of 12 KiB: past our mark, under the 16 KiB at which the socket itself asks for 'drain'.
    const { sent, refused } = sendUntilRefused(t, 12 * 1024, 2000);
    expect(refused).toBe(true);
    server.resume();
    await until(() => got.drains() > 0 && server.received() === sent, 10_000, 'drain and every byte');
    t.close();
  });

  it('an orderly close goes out behind queued data: the server gets every byte, then 1000', async () => {
    const server = await pausedServer();
    const t = await connectWebSocket(server.url, { zeroMask: true });
    collect(t);
    await server.connected();
    const total = 64 * 60 * 1024; // far more than loopback socket buffers hold
    for (let i = 0; i < 60; i++) t.send([Buffer.alloc(64 * 1024, i)]);
    t.close();
    // About time: the server stays paused a while, so a close sent ahead of the queue would get there first.
    await new Promise((r) => setTimeout(r, 300));
    server.resume();
    await until(() => server.closedWith() !== undefined, 10_000, 'server close');
    expect(server.received()).toBe(total);
    expect(server.closedWith()).toBe(1000);
  });

  it('send returns false above the high-water mark while the server does not read, then drains', async () => {
    const server = await pausedServer();
    const t: WebSocketClientTransport = await connectWebSocket(server.url, { highWaterMark: 64 * 1024 });
    const got = collect(t);
    await server.connected();
    const { sent, refused } = sendUntilRefused(t, 16 * 1024, 4000);
    expect(refused).toBe(true);
    expect(t.bufferedAmount).toBeGreaterThan(64 * 1024);
    server.resume();
    await until(() => got.drains() > 0 && server.received() === sent, 10_000, 'drain and every byte');
    t.close();
  });
});

describe('WebSocket client transport against raw servers', () => {
  it('delivers a message that arrives in the same read as the 101 answer', async () => {
    const url = await rawServer((key) => Buffer.concat([Buffer.from(upgraded(key)), frameHeader(true, 2, 5), Buffer.from('early')]));
    const t = await connectWebSocket(url);
    const got = collect(t);
    await until(() => got.messages.length === 1);
    expect(got.messages[0]!.toString()).toBe('early');
    t.close();
  });

  it('hands the refusal status and body to the caller, or fails with ERR_TRANSPORT_HANDSHAKE', async () => {
    const body = JSON.stringify({ code: 'ERR_AUTH_INVALID', message: 'no' });
    const url = await rawServer(
      () => `HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    const seen: { status: number; body: string }[] = [];
    const err = (await connectWebSocket(url, {
      refused: (status, b) => (seen.push({ status, body: b.toString() }), new Error('refused')),
    }).catch((e: Error) => e)) as Error;
    expect(err.message).toBe('refused');
    // Once, also after the refused connection has closed (kept: a second call would have no event to wait for).
    await new Promise((r) => setTimeout(r, 100));
    expect(seen).toEqual([{ status: 401, body }]);
    expect(codeOf(await connectWebSocket(url).catch((e: unknown) => e))).toBe('ERR_TRANSPORT_HANDSHAKE');
    // A refusal without Content-Length ends with the connection.
    const open = await rawServer(
      () => 'HTTP/1.1 503 Busy\r\n\r\nlater',
      (s) => s.end(),
    );
    const late: string[] = [];
    await connectWebSocket(open, { refused: (_s, b) => (late.push(b.toString()), new Error('refused')) }).catch(() => undefined);
    expect(late).toEqual(['later']);
    // One without a length on a connection kept open reports its status when the time is up.
    const kept = await rawServer(() => 'HTTP/1.1 403 Forbidden\r\n\r\nno');
    const statuses: number[] = [];
    await connectWebSocket(kept, { timeoutMs: 300, refused: (status) => (statuses.push(status), new Error('refused')) }).catch(
      () => undefined,
    );
    expect(statuses).toEqual([403]);
  });

  it('refuses answers that are not a valid handshake', async () => {
    const answers: ((key: string) => string)[] = [
      () =>
        'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n',
      (key) => upgraded(key).replace('\r\n\r\n', '\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n'),
      (key) => upgraded(key).replace('Upgrade: websocket', 'Upgrade: h2c'),
      () => 'SSH-2.0-OpenSSH_9.2\r\n\r\n',
    ];
    for (const answer of answers) {
      const url = await rawServer(answer);
      const err = await connectWebSocket(url).catch((e: unknown) => e);
      expect(codeOf(err), String(answer)).toBe('ERR_TRANSPORT_HANDSHAKE');
    }
  });

  it('fails a close frame whose reason is not UTF-8 with ERR_PROTOCOL_FRAME and answers 1007', async () => {
    let answer: Buffer | undefined;
    const payload = Buffer.from([0x03, 0xe8, 0xc3, 0x28]); // 1000, then a broken two-byte sequence
    const url = await rawServer(
      (key) => Buffer.concat([Buffer.from(upgraded(key)), frameHeader(true, 8, payload.length), payload]),
      (s) => s.on('data', (d: Buffer) => (answer = d)),
    );
    const t = await connectWebSocket(url, { zeroMask: true });
    expect(codeOf(await collect(t).closed)).toBe('ERR_PROTOCOL_FRAME');
    await until(() => answer !== undefined, 5000, 'the close answer');
    expect(answer!.readUInt16BE(6)).toBe(1007); // after a 2-byte header and the all-zero mask
  });

  it('fails a masked server frame with ERR_PROTOCOL_FRAME', async () => {
    const url = await rawServer((key) =>
      Buffer.concat([Buffer.from(upgraded(key)), frameHeader(true, 2, 3, Buffer.from([1, 2, 3, 4])), Buffer.from('abc')]),
    );
    const t = await connectWebSocket(url);
    expect(codeOf(await collect(t).closed)).toBe('ERR_PROTOCOL_FRAME');
  });

  it('reports a connection dropped without a close frame, and one that never answers', async () => {
    const url = await rawServer(upgraded, (s) => setTimeout(() => s.destroy(), 50));
    const t = await connectWebSocket(url);
    const err = await collect(t).closed;
    expect(codeOf(err)).toBe('ERR_TRANSPORT_CLOSED');
    const silent = await rawServer(() => undefined);
    const started = Date.now();
    const slow = (await connectWebSocket(silent, { timeoutMs: 300 }).catch((e: Error) => e)) as Error;
    expect(codeOf(slow)).toBe('ERR_TRANSPORT_CLOSED');
    expect(slow.message).toContain('no WebSocket handshake within 300 ms');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('answers pings only while the server reads: a server that pings and never reads cannot fill the client', async () => {
    let server!: net.Socket;
    const url = await rawServer(upgraded, (s) => {
      s.pause(); // never reads the pongs
      server = s;
    });
    const t = await connectWebSocket(url);
    collect(t);
    await until(() => server !== undefined, 5000, 'server connection');
    const pings = Buffer.concat(Array.from({ length: 1000 }, () => Buffer.concat([frameHeader(true, 9, 125), Buffer.alloc(125, 7)])));
    let peak = 0;
    // About 32 MiB of pings: the kernel's buffers on both ends take several MiB of pongs first.
    for (let i = 0; i < 256; i++) {
      if (!server.write(pings)) await new Promise<void>((r) => server.once('drain', () => r()));
      peak = Math.max(peak, t.bufferedAmount);
    }
    expect(peak).toBeLessThanOrEqual(256 * 1024 + 131);
    t.close();
  });

  it('rejects header values that would split the request, and bad URLs', async () => {
    const url = await rawServer(upgraded);
    expect(codeOf(await connectWebSocket(url, { headers: { authorization: 'x\r\nevil: 1' } }).catch((e: unknown) => e))).toBe('ERR_CONFIG');
    expect(codeOf(await connectWebSocket(url, { headers: { 'Content-Length': '10' } }).catch((e: unknown) => e))).toBe('ERR_CONFIG');
    expect(codeOf(await connectWebSocket('ftp://127.0.0.1/').catch((e: unknown) => e))).toBe('ERR_CONFIG');
    expect(codeOf(await connectWebSocket('not a url').catch((e: unknown) => e))).toBe('ERR_CONFIG');
  });
});
