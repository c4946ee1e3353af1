// The per-turn read bound (src/util/read-turn.ts): a socket whose peer keeps it full delivers at
// most the bound in one turn of the event loop, then reads on after the poll. Real sockets, a
// client that writes far more than one read ahead of the reader; the turns are counted by a
// setImmediate that re-arms itself (one count per loop iteration), and each turn's bytes are the
// socket's bytesRead between two counts. No timing: only what one turn delivered, and every byte
// once, in order, with the half-close after it.
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Channel } from '../src/mux/index.js';
import { bridge } from '../src/proxy/bridge.js';
import { connectWebSocket } from '../src/transport/ws-connect.js';
import { DEFAULT_MAX_MESSAGE_SIZE } from '../src/transport/transport.js';
import { ownReads } from '../src/util/owned-reads.js';
import { sharedReadBuffer } from '../src/util/shared-read-buffer.js';
import { sessionPair, sha256 } from './helpers/session-pair.js';
import { until } from './helpers/until.js';

const READ = 16 * 1024; // read buffer: small, so the kernel holds many full reads at once
const BOUND = 2 * READ; // bytes one turn may deliver

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A listener that holds accepted sockets paused (as the service proxy does) and a client connected to it. */
async function acceptedPair(): Promise<{ client: net.Socket; accepted: net.Socket }> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect({ port: (server.address() as net.AddressInfo).port, host: '127.0.0.1', allowHalfOpen: true });
  const socket = await accepted;
  cleanups.push(async () => {
    client.destroy();
    socket.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { client, accepted: socket };
}

/**
 * Counts the loop's turns and what `socket` read in each: the largest turn so far, and how many
 * turns read anything. Stops with the returned function.
 */
function turnsOf(socket: () => net.Socket): { largest: () => number; turns: () => number; stop: () => void } {
  let last = 0;
  let largest = 0;
  let turns = 0;
  let running = true;
  const tick = (): void => {
    const now = socket().bytesRead;
    if (now - last > largest) largest = now - last;
    if (now > last) turns++;
    last = now;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const stop = (): void => {
    running = false;
  };
  cleanups.push(stop);
  return { largest: () => largest, turns: () => turns, stop };
}

/** Writes `data` in pieces of up to 200 KB, waiting only for the socket's own backpressure, then ends it. */
async function writeAll(client: net.Socket, data: Buffer): Promise<void> {
  for (let at = 0; at < data.length; at += 200_000) {
    if (!client.write(data.subarray(at, at + 200_000))) await new Promise((r) => client.once('drain', r));
  }
  client.end();
}

describe('a socket delivers at most its turn bound in one turn', () => {
  it.each([
    ['bounded', BOUND],
    ['unbounded (the old reads, for contrast)', 0],
  ])(
    '%s: every byte once, in order, then the half-close',
    async (_, bound) => {
      const { client, accepted } = await acceptedPair();
      const data = randomBytes(8 * 1024 * 1024);
      const got: Buffer[] = [];
      expect(
        ownReads(
          accepted,
          sharedReadBuffer(READ),
          (view) => {
            got.push(Buffer.from(view));
            return true;
          },
          undefined,
          bound,
        ),
      ).toBe(true);
      const ended = new Promise<void>((r) => accepted.once('end', () => r()));
      const turns = turnsOf(() => accepted);
      // The client writes ahead of the reader: the kernel holds many reads' worth when reading starts.
      const written = writeAll(client, data);
      await new Promise((r) => setTimeout(r, 20));
      accepted.resume();
      await written;
      await ended;
      turns.stop();
      expect(sha256(Buffer.concat(got))).toBe(sha256(data));
      if (bound > 0) expect(turns.largest()).toBeLessThanOrEqual(bound);
      // Without a bound libuv reads on while reads fill the buffer: the contrast shows the test can fail.
      else expect(turns.largest()).toBeGreaterThan(BOUND);
    },
    30_000,
  );

  it('stays stopped when its owner pauses it in the read that reached the bound, and reads on at its resume', async () => {
    const { client, accepted } = await acceptedPair();
    const data = randomBytes(2 * 1024 * 1024);
    const got: Buffer[] = [];
    let pausedAt = -1;
    ownReads(
      accepted,
      sharedReadBuffer(READ),
      (view) => {
        got.push(Buffer.from(view));
        // The owner's own backpressure (as the hub's splice does), in the read that reaches the bound.
        if (pausedAt < 0 && got.length === 2) {
          pausedAt = accepted.bytesRead;
          accepted.pause();
        }
        return true;
      },
      undefined,
      BOUND,
    );
    const ended = new Promise<void>((r) => accepted.once('end', () => r()));
    const written = writeAll(client, data);
    await new Promise((r) => setTimeout(r, 20));
    accepted.resume();
    await until(() => pausedAt >= 0, 10_000, 'the pause');
    // Many turns later it has read nothing more: the turn bound's resume did not undo the owner's pause.
    for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
    expect(accepted.bytesRead).toBe(pausedAt);
    accepted.resume();
    await written;
    await ended;
    expect(sha256(Buffer.concat(got))).toBe(sha256(data));
  }, 30_000);

  it('ends cleanly when the socket is destroyed while its reads wait for the next turn', async () => {
    const { client, accepted } = await acceptedPair();
    let reads = 0;
    ownReads(
      accepted,
      sharedReadBuffer(READ),
      () => {
        // The read that reaches the bound: the socket goes before its reads restart.
        if (++reads === 2) accepted.destroy();
        return true;
      },
      undefined,
      BOUND,
    );
    void writeAll(client, randomBytes(1024 * 1024)).catch(() => undefined);
    client.on('error', () => undefined);
    await new Promise((r) => setTimeout(r, 20));
    accepted.resume();
    await new Promise<void>((r) => accepted.once('close', () => r()));
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    expect(reads).toBe(2);
  });
});

describe('the bridge bounds its socket reads per turn', () => {
  async function channelAndSockets(): Promise<{ channel: Channel; far: Channel; client: net.Socket; accepted: net.Socket }> {
    const pair = await sessionPair('memory', { channelSendBuffer: 64 * 1024 });
    cleanups.push(() => pair.cleanup());
    const opened = new Promise<Channel>((r) => pair.responder.on('open', (req) => r(req.accept())));
    const channel = pair.initiator.openChannel({ host: 'x', port: 1 });
    const far = await opened;
    return { channel, far, ...(await acceptedPair()) };
  }

  it('through a slow channel (its backpressure stops the reads too): bounded turns, every byte, the half-close', async () => {
    const { channel, far, client, accepted } = await channelAndSockets();
    let done: Error | undefined | null = null;
    bridge(accepted, channel, { onDone: (err) => (done = err) }, { readBufferBytes: READ, turnReadBytes: BOUND });
    const turns = turnsOf(() => accepted);
    const data = randomBytes(6 * 1024 * 1024);
    const received = new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      far.on('data', (c: Buffer) => {
        chunks.push(Buffer.from(c));
        // Slow now and then, so the channel's send buffer fills and the bridge waits for 'drain'.
        if (chunks.length % 16 === 0) {
          far.pause();
          setTimeout(() => far.resume(), 1);
        }
      });
      far.once('end', () => resolve(Buffer.concat(chunks)));
      far.once('error', reject);
    });
    const written = writeAll(client, data);
    await new Promise((r) => setTimeout(r, 20));
    accepted.resume();
    await written;
    const got = await received;
    turns.stop();
    expect(sha256(got)).toBe(sha256(data));
    expect(turns.largest()).toBeLessThanOrEqual(BOUND);
    expect(turns.turns()).toBeGreaterThanOrEqual(data.length / BOUND);
    // Half-closed: the other direction still works, then ends the connection.
    const back: Buffer[] = [];
    client.on('data', (c: Buffer) => back.push(c));
    const clientEnded = new Promise<void>((r) => client.once('end', () => r()));
    far.end(Buffer.from('after the half-close'));
    await clientEnded;
    expect(Buffer.concat(back).toString()).toBe('after the half-close');
    await until(() => done !== null);
    expect(done).toBeUndefined();
  }, 60_000);
});

describe('the websocket client bounds its stream socket reads per turn', () => {
  it('a server that sends far ahead: bounded turns, every message intact and in order', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: DEFAULT_MAX_MESSAGE_SIZE, perMessageDeflate: false });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    cleanups.push(async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    });
    const server = new Promise<WebSocket>((r) => wss.once('connection', (ws) => r(ws)));
    const t = await connectWebSocket(`ws://127.0.0.1:${(wss.address() as { port: number }).port}/`, {
      ownedReadBytes: READ,
      turnReadBytes: BOUND,
    });
    cleanups.push(() => t.close());
    // Whole records (the largest message) and smaller ones, 12 MiB in all.
    const want = Array.from({ length: 400 }, (_, i) =>
      randomBytes(i % 2 === 0 ? DEFAULT_MAX_MESSAGE_SIZE : 1 + Math.floor(Math.random() * 30_000)),
    );
    const got: Buffer[] = [];
    let closed: Error | null | undefined;
    t.attach({
      onMessage: (m) => got.push(Buffer.from(m)),
      onMessageParts: (parts) => got.push(Buffer.concat(parts)),
      onDrain: () => undefined,
      onClose: (error) => (closed = error ?? null),
    });
    const turns = turnsOf(() => t.socket);
    const ws = await server;
    for (const m of want) ws.send(m, { binary: true });
    await until(() => got.length === want.length || closed !== undefined, 20_000, 'every message');
    expect(closed).toBeUndefined();
    turns.stop();
    expect(turns.largest()).toBeLessThanOrEqual(BOUND);
    for (let i = 0; i < want.length; i++) expect(got[i]!.equals(want[i]!)).toBe(true);
  }, 30_000);
});
