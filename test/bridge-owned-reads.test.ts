// The bridge reads its local socket into the process-wide shared buffer (src/util/owned-reads.ts)
// and copies each read for the channel, or, while the socket streams, into a fresh buffer per read
// that goes to the channel uncopied. Real sockets: a client writes into an accepted socket (the
// service proxy's kind, which Node gives no `onread` option); the far end of a mux session reads
// slowly, so the bridge stops and restarts reading many times, and every byte must arrive once, in
// order, with the client's half-close carried as the channel's end. Each read overwrites the
// shared buffer: a channel that kept a view instead of a copy would see later bytes.
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { Channel } from '../src/mux/index.js';
import { bridge } from '../src/proxy/bridge.js';
import { ownReads, ownReadsToKeep } from '../src/util/owned-reads.js';
import { sharedReadBuffer } from '../src/util/shared-read-buffer.js';
import { sessionPair, sha256 } from './helpers/session-pair.js';
import { until } from './helpers/until.js';

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

/** A mux channel and its far end (a memory session pair), and an accepted socket pair: not yet bridged. */
async function channelAndSockets(
  config: Parameters<typeof sessionPair>[1] = {},
): Promise<{ channel: Channel; far: Channel; client: net.Socket; accepted: net.Socket }> {
  const pair = await sessionPair('memory', config);
  cleanups.push(() => pair.cleanup());
  const opened = new Promise<Channel>((r) => pair.responder.on('open', (req) => r(req.accept())));
  const channel = pair.initiator.openChannel({ host: 'x', port: 1 });
  const far = await opened;
  return { channel, far, ...(await acceptedPair()) };
}

/** Reads `channel` slowly (a pause after every chunk), so its window fills and the writer waits. */
/** The chunks the bridge writes into `channel` from now on, as it writes them (no copies). */
function recordWrites(channel: Channel): Buffer[] {
  const chunks: Buffer[] = [];
  const write = channel.write.bind(channel);
  channel.write = ((chunk: Buffer, ...rest: never[]) => {
    chunks.push(chunk);
    return write(chunk, ...rest);
  }) as typeof channel.write;
  return chunks;
}

function slowDigest(channel: Channel): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    channel.on('data', (c: Buffer) => {
      chunks.push(Buffer.from(c));
      channel.pause();
      setTimeout(() => channel.resume(), 1);
    });
    channel.once('end', () => resolve(Buffer.concat(chunks)));
    channel.once('error', reject);
  });
}

describe('bridge reads into the shared buffer', () => {
  it('takes over the reads of a paused accepted socket on this Node (no onread option there)', async () => {
    const { client, accepted } = await acceptedPair();
    const buffer = sharedReadBuffer(64 * 1024);
    const views: Buffer[] = [];
    const data = randomBytes(1024 * 1024);
    const got: Buffer[] = [];
    expect(
      ownReads(accepted, buffer, (view) => {
        views.push(view);
        got.push(Buffer.from(view));
        return true;
      }),
    ).toBe(true);
    const ended = new Promise<void>((r) => accepted.once('end', () => r()));
    accepted.resume();
    client.end(data);
    await ended;
    expect(Buffer.concat(got).equals(data)).toBe(true);
    expect(views.length).toBeGreaterThan(0);
    for (const v of views) expect(v.buffer).toBe(buffer.buffer);
  });

  it('leaves a socket with bytes already buffered to the ordinary reads', async () => {
    const { accepted } = await acceptedPair();
    accepted.unshift(Buffer.from('held'));
    expect(ownReads(accepted, sharedReadBuffer(64 * 1024), () => true)).toBe(false);
  });

  it.each([
    ['24 MiB in pieces up to 300 KB', 24 * 1024 * 1024, 300_000],
    ['4 MiB in pieces up to 3 KB', 4 * 1024 * 1024, 3_000],
  ])(
    'carries %s byte for byte through a slow channel, then the half-close, and bytes back after it',
    async (_, size, piece) => {
      const { channel, far, client, accepted } = await channelAndSockets({ channelSendBuffer: 64 * 1024 });
      let done: Error | undefined | null = null;
      bridge(accepted, channel, { onDone: (err) => (done = err) });
      accepted.resume();
      const data = randomBytes(size);
      const received = slowDigest(far);
      // Written in pieces of odd sizes, so reads end at arbitrary points.
      for (let at = 0; at < data.length; ) {
        const n = Math.min(data.length - at, 1 + Math.floor(Math.random() * piece));
        if (!client.write(data.subarray(at, at + n))) await new Promise((r) => client.once('drain', r));
        at += n;
      }
      client.end();
      const got = await received;
      expect(got.length).toBe(data.length);
      expect(sha256(got)).toBe(sha256(data));
      // Half-closed: the other direction still works, then ends the connection.
      const back: Buffer[] = [];
      client.on('data', (c: Buffer) => back.push(c));
      const clientEnded = new Promise<void>((r) => client.once('end', () => r()));
      far.end(Buffer.from('after the half-close'));
      await clientEnded;
      expect(Buffer.concat(back).toString()).toBe('after the half-close');
      await until(() => done !== null);
      expect(done).toBeUndefined();
    },
    60_000,
  );

  it("hands a streaming socket's large reads to the channel uncopied, each in a buffer of its own, and copies small ones", async () => {
    const { channel, far, client, accepted } = await channelAndSockets();
    const bytes = 256 * 1024;
    const shared = sharedReadBuffer(bytes);
    const chunks = recordWrites(channel);
    bridge(accepted, channel, {}, { readBufferBytes: bytes });
    accepted.resume();
    const received = slowDigest(far);
    // Pieces of 200 000 bytes, a turn apart: most reads take one, more than half a read buffer but not all of it.
    const bulk = randomBytes(40 * 200_000);
    for (let at = 0; at < bulk.length; at += 200_000) {
      client.write(bulk.subarray(at, at + 200_000));
      await new Promise((r) => setImmediate(r));
    }
    await until(() => chunks.reduce((n, c) => n + c.length, 0) >= bulk.length, 20_000, 'the bulk read');
    const small = randomBytes(20 * 100);
    for (let at = 0; at < small.length; at += 100) {
      client.write(small.subarray(at, at + 100));
      await new Promise((r) => setTimeout(r, 5));
    }
    client.end();
    expect(sha256(await received)).toBe(sha256(Buffer.concat([bulk, small])));
    // Nothing the channel keeps is a view of the shared buffer, which the next read overwrites.
    for (const c of chunks) expect(c.buffer).not.toBe(shared.buffer);
    // Large reads went as they were read: views of a read buffer each (a copy would be a buffer
    // of the read's size), no two in the same one.
    const uncopied = chunks.filter((c) => c.buffer.byteLength === bytes && c.length < bytes && c.length * 2 >= bytes);
    expect(uncopied.length).toBeGreaterThan(0);
    expect(new Set(uncopied.map((c) => c.buffer)).size).toBe(uncopied.length);
    // Small reads were copied into buffers of their size (Node's pool for these), not kept in a read buffer.
    const tail = chunks.slice(-10);
    for (const c of tail) expect(c.buffer.byteLength).toBeLessThan(bytes);
  }, 30_000);

  it('gives a read buffer of its own back once the socket goes quiet after a large read, and reads on byte for byte', async () => {
    const { channel, far, client, accepted } = await channelAndSockets();
    // A 4 KiB read buffer: a 3000-byte write (one loopback segment, one read) is a large read.
    const bytes = 4096;
    const shared = sharedReadBuffer(bytes);
    const kBuffer = Object.getOwnPropertySymbols(accepted).find((k) => k.description === 'kBuffer')!;
    const readBuffer = (): unknown => (accepted as unknown as Record<symbol, unknown>)[kBuffer];
    const chunks = recordWrites(channel);
    bridge(accepted, channel, {}, { readBufferBytes: bytes, idleReadBufferMs: 50 });
    accepted.resume();
    const got: Buffer[] = [];
    far.on('data', (c: Buffer) => got.push(Buffer.from(c)));
    const arrived = (n: number): Promise<void> => until(() => got.reduce((k, c) => k + c.length, 0) >= n, 10_000, `${n} bytes`);
    const sent: Buffer[] = [];
    const send = async (n: number): Promise<void> => {
      const piece = randomBytes(n);
      sent.push(piece);
      client.write(piece);
      await arrived(sent.reduce((k, c) => k + c.length, 0));
    };
    // Two large reads: the first (into the shared buffer) copied, the second into a buffer of the
    // socket's own and passed on as it is, and the socket then holds a fresh one for its next read.
    await send(3000);
    await send(3000);
    expect(chunks.some((c) => c.buffer.byteLength === bytes && c.buffer !== shared.buffer)).toBe(true);
    // Quiet: the socket gives its buffer back and its next read goes to the shared one.
    await until(() => readBuffer() === shared, 10_000, 'the quiet socket reading into the shared buffer again');
    // It reads on: large reads into buffers of its own again, small ones, all in order.
    for (const n of [3000, 3000, 100, 3000]) await send(n);
    client.end();
    await new Promise<void>((r) => far.once('end', () => r()));
    expect(sha256(Buffer.concat(got))).toBe(sha256(Buffer.concat(sent)));
    for (const c of chunks) expect(c.buffer).not.toBe(shared.buffer);
  }, 30_000);

  it.each([
    ['released', true],
    ['kept', false],
  ])(
    "ownReadsToKeep with every read %s: large reads land again in the one buffer of the socket's own, or each in a fresh one",
    async (_, released) => {
      const { client, accepted } = await acceptedPair();
      const bytes = 64 * 1024;
      const shared = sharedReadBuffer(bytes);
      const got: Buffer[] = [];
      const ownBuffers = new Set<ArrayBufferLike>();
      let largeReads = 0;
      expect(
        ownReadsToKeep(
          accepted,
          bytes,
          (chunk) => {
            got.push(Buffer.from(chunk)); // what a callee that releases the buffer must do with what it keeps
            if (chunk.buffer !== shared.buffer && chunk.length * 2 >= bytes && chunk.buffer.byteLength === bytes) {
              ownBuffers.add(chunk.buffer);
              largeReads++;
            }
            return true;
          },
          0,
          () => released,
        ),
      ).toBe(true);
      const ended = new Promise<void>((r) => accepted.once('end', () => r()));
      accepted.resume();
      // Pieces of 48 000 bytes a turn apart: most reads take one, large (over half the buffer) but not full.
      const data = randomBytes(60 * 48_000);
      for (let at = 0; at < data.length; at += 48_000) {
        client.write(data.subarray(at, at + 48_000));
        await new Promise((r) => setImmediate(r));
      }
      client.end();
      await ended;
      expect(sha256(Buffer.concat(got))).toBe(sha256(data));
      expect(largeReads).toBeGreaterThan(2);
      // Kept: each large read in a buffer of its own. Released: large reads one after another land
      // in the same buffer (a small read between them sends the next to the shared buffer, and the
      // large one after that to a fresh buffer).
      if (released) expect(ownBuffers.size).toBeLessThanOrEqual(largeReads / 4);
      else expect(ownBuffers.size).toBe(largeReads);
    },
  );

  it('keeps reading after a small read the channel held back (no drain follows a write that said yes)', async () => {
    const { channel, far, client, accepted } = await channelAndSockets({ channelSendBuffer: 64 * 1024 });
    far.pause(); // the channel's window (256 KiB) fills, then its mux queue
    bridge(accepted, channel);
    accepted.resume();
    const data = randomBytes(300 * 1024 + 80 * 1000);
    client.write(data.subarray(0, 300 * 1024));
    await until(() => channel.pendingBytes > 0);
    // Small pieces, each its own read: past 64 KiB queued the channel holds one back.
    for (let at = 300 * 1024; at < data.length; at += 1000) {
      client.write(data.subarray(at, at + 1000));
      await new Promise((r) => setTimeout(r, 2));
    }
    client.end();
    const got: Buffer[] = [];
    far.on('data', (c: Buffer) => got.push(c));
    const ended = new Promise<void>((r) => far.once('end', () => r()));
    far.resume();
    await ended;
    expect(sha256(Buffer.concat(got))).toBe(sha256(data));
  }, 20_000);

  it('writes 16 MiB from the channel to a slowly reading socket byte for byte, then its end', async () => {
    const { channel, far, client, accepted } = await channelAndSockets();
    bridge(accepted, channel);
    accepted.resume();
    const data = randomBytes(16 * 1024 * 1024);
    const got: Buffer[] = [];
    const ended = new Promise<void>((r) => client.once('end', () => r()));
    client.on('data', (c: Buffer) => {
      got.push(c);
      client.pause();
      setTimeout(() => client.resume(), 1);
    });
    for (let at = 0; at < data.length; ) {
      const n = Math.min(data.length - at, 1 + Math.floor(Math.random() * 200_000));
      if (!far.write(data.subarray(at, at + n))) await new Promise((r) => far.once('drain', r));
      at += n;
    }
    far.end();
    await ended;
    expect(sha256(Buffer.concat(got))).toBe(sha256(data));
  }, 60_000);
});

describe('the socket queue of a local reader that stops reading', () => {
  it('stays within one turn batch when the channel resumes with a full window behind it (pipe() kept one write)', async () => {
    const { channel, far, client, accepted } = await channelAndSockets();
    client.pause(); // the local application reads nothing for now
    bridge(accepted, channel);
    accepted.resume();
    // The far end writes until the window is full and the kernel's buffers are too.
    const data = randomBytes(8 * 1024 * 1024);
    let at = 0;
    const writer = (async () => {
      while (at < data.length) {
        const n = Math.min(data.length - at, 64 * 1024);
        const more = far.write(data.subarray(at, at + n));
        at += n;
        if (!more) await new Promise((r) => far.once('drain', r));
      }
      far.end();
    })();
    await until(() => channel.readableLength > 0 && accepted.writableNeedDrain);
    await new Promise((r) => setTimeout(r, 100));
    // Now the reader drains a little at a time: every 'drain' resumes the channel with what it holds.
    let peak = 0;
    const got: Buffer[] = [];
    const ended = new Promise<void>((r) => client.once('end', () => r()));
    client.on('data', (c: Buffer) => {
      got.push(c);
      peak = Math.max(peak, accepted.writableLength);
      client.pause();
      setImmediate(() => client.resume());
    });
    client.resume();
    await writer;
    await ended;
    expect(sha256(Buffer.concat(got))).toBe(sha256(data));
    expect(peak).toBeLessThanOrEqual(512 * 1024);
  }, 60_000);
});
