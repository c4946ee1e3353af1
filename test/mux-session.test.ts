import { describe, expect, it } from 'vitest';
import { FrameType, HEADER_SIZE, type Channel, type OpenRequest } from '../src/mux/index.js';
import { DevstreamsError } from '../src/errors.js';
import {
  digestStream,
  once,
  randomBytes,
  sessionPair,
  sha256,
  transportPair,
  writeChunked,
  type PipeKind,
} from './helpers/session-pair.js';
import { Session } from '../src/mux/index.js';
import { until } from './helpers/until.js';
import { createMemoryTransportPair } from '../src/transport/index.js';

/** Echo every accepted channel back to its opener. */
function echoResponder(request: OpenRequest): void {
  const channel = request.accept();
  channel.pipe(channel);
}

describe.each<PipeKind>(['memory', 'tcp'])('mux session over %s', (kind) => {
  it('moves data both ways through one channel and half-closes like TCP', async () => {
    const { initiator, responder, cleanup } = await sessionPair(kind);
    responder.on('open', echoResponder);
    const channel = initiator.openChannel({ host: '127.0.0.1', port: 7 });
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const received = digestStream(channel);
    await writeChunked(channel, data);
    const result = await received;
    expect(result.bytes).toBe(data.length);
    expect(result.hash).toBe(sha256(data));
    await cleanup();
  });

  it('carries the target and lets data written before ACCEPT arrive (no round trip before data)', async () => {
    const { initiator, responder, cleanup } = await sessionPair(kind);
    const seen = new Promise<{ target: unknown; first: Buffer }>((resolve) => {
      responder.on('open', (request) => {
        // Accept only after the first bytes are already readable: they travelled with the OPEN.
        setTimeout(() => {
          const channel = request.accept();
          channel.once('data', (first: Buffer) => resolve({ target: request.target, first }));
        }, 20);
      });
    });
    const channel = initiator.openChannel({ host: 'sshd.local', port: 22, service: 'ssh' });
    channel.write('SSH-2.0-hello\r\n');
    const { target, first } = await seen;
    expect(target).toEqual({ host: 'sshd.local', port: 22, service: 'ssh' });
    expect(first.toString()).toBe('SSH-2.0-hello\r\n');
    await cleanup();
  });

  it('keeps the reverse direction flowing after one side ends (echo until EOF)', async () => {
    const { initiator, responder, cleanup } = await sessionPair(kind);
    responder.on('open', (request) => {
      const channel = request.accept();
      const chunks: Buffer[] = [];
      channel.on('data', (c: Buffer) => chunks.push(c));
      channel.on('end', () => {
        // Only after the opener's EOF does the responder answer, like `ssh host cmd < file`.
        const all = Buffer.concat(chunks);
        channel.end(Buffer.from(`${all.length}:${sha256(all)}`));
      });
    });
    const channel = initiator.openChannel({ host: 'x', port: 1 });
    const payload = randomBytes(700_000);
    const reply = digestStreamText(channel);
    channel.end(payload);
    expect(await reply).toBe(`${payload.length}:${sha256(payload)}`);
    await cleanup();
  });

  it('hands an OPEN that arrived before construction to the onOpen option', async () => {
    const pair = await transportPair(kind);
    const initiator = new Session(pair.a, { role: 'initiator' });
    const channel = initiator.openChannel({ host: 'early', port: 1 });
    channel.write('first bytes');
    // Kept: no session is attached yet to announce the OPEN's arrival. The pause lets it arrive
    // first, which is the case under test (an OPEN arriving later would pass as well).
    await new Promise((r) => setTimeout(r, 30));
    let seen = '';
    const responder = new Session(pair.b, {
      role: 'responder',
      onOpen: (r) => r.accept().on('data', (c: Buffer) => (seen += c.toString())),
    });
    await until(() => seen === 'first bytes', 5000, 'the early bytes');
    initiator.close();
    responder.close();
    await pair.cleanup();
  });

  it('survives a reset and a session end while an open request is unanswered', async () => {
    const { initiator, responder, cleanup } = await sessionPair(kind);
    const pending: OpenRequest[] = [];
    responder.on('open', (r) => pending.push(r)); // answered later, as a device still connecting would
    const firstOpen = once(responder, 'open');
    const first = initiator.openChannel({ host: 'slow', port: 1 });
    first.on('error', () => {});
    await firstOpen;
    const framesBefore = responder.stats.framesReceived;
    first.reset('ERR_CHANNEL_RESET', 'client gone');
    await until(() => responder.stats.framesReceived > framesBefore, 5000, 'the reset to arrive');
    expect(pending[0]!.accept().destroyed).toBe(true);
    const secondOpen = once(responder, 'open');
    const second = initiator.openChannel({ host: 'slow', port: 2 });
    second.on('error', () => {});
    await secondOpen;
    const responderClosed = once(responder, 'close');
    initiator.close(new DevstreamsError('ERR_INTERNAL', 'link lost'));
    await responderClosed;
    expect(responder.closed).toBe(true);
    expect(pending[1]!.accept().destroyed).toBe(true);
    await cleanup();
  });

  it('surfaces a refusal code on the opener', async () => {
    const { initiator, responder, cleanup } = await sessionPair(kind);
    responder.on('open', (request) =>
      request.refuse('ERR_TARGET_NOT_ALLOWED', `${request.target.host}:${request.target.port} is not on the allow list`),
    );
    const channel = initiator.openChannel({ host: '10.0.0.1', port: 3389 });
    const error = await once<DevstreamsError>(channel, 'error');
    expect(error).toBeInstanceOf(DevstreamsError);
    expect(error.code).toBe('ERR_TARGET_NOT_ALLOWED');
    expect(error.message).toMatch(/allow list/);
    expect(initiator.channelCount).toBe(0);
    await cleanup();
  });

  it('refuses with ERR_TARGET_NOT_ALLOWED when nobody listens for opens', async () => {
    const { initiator, cleanup } = await sessionPair(kind);
    const channel = initiator.openChannel({ host: 'x', port: 1 });
    expect((await once<DevstreamsError>(channel, 'error')).code).toBe('ERR_TARGET_NOT_ALLOWED');
    await cleanup();
  });

  it('reports each round-trip sample as the minimum so far, and measures afresh after resetRtt', async () => {
    const { initiator, cleanup } = await sessionPair(kind);
    try {
      const first = await once<number>(initiator, 'rtt');
      expect(initiator.minRttMs).toBeLessThanOrEqual(first);
      initiator.resetRtt();
      expect(initiator.minRttMs).toBeUndefined();
      const fresh = await once<number>(initiator, 'rtt');
      expect(initiator.minRttMs).toBe(fresh);
    } finally {
      await cleanup();
    }
  });

  it('carries a reset with its code both ways', async () => {
    const { initiator, responder, cleanup } = await sessionPair(kind);
    const accepted = new Promise<Channel>((resolve) => responder.on('open', (r) => resolve(r.accept())));
    const channel = initiator.openChannel({ host: 'x', port: 1 });
    channel.write('hello');
    const remote = await accepted;
    const error = once<DevstreamsError>(remote, 'error');
    channel.reset('ERR_TARGET_UNREACHABLE', 'connect ECONNREFUSED');
    const e = await error;
    expect(e.code).toBe('ERR_TARGET_UNREACHABLE');
    expect(e.message).toMatch(/ECONNREFUSED/);
    expect(channel.destroyed).toBe(true);
    await cleanup();
  });

  it('refuses channels past maxChannels with ERR_TOO_MANY_CHANNELS', async () => {
    const { initiator, responder, cleanup } = await sessionPair(kind, {}, { maxChannels: 2 });
    const held: Channel[] = [];
    responder.on('open', (r) => held.push(r.accept()));
    const ok1 = initiator.openChannel({ host: 'x', port: 1 });
    const ok2 = initiator.openChannel({ host: 'x', port: 2 });
    const third = initiator.openChannel({ host: 'x', port: 3 });
    expect((await once<DevstreamsError>(third, 'error')).code).toBe('ERR_TOO_MANY_CHANNELS');
    expect(ok1.destroyed || ok2.destroyed).toBe(false);
    await cleanup();
  });

  it('moves 1,000 concurrent channels of random data intact', async () => {
    const { initiator, responder, cleanup } = await sessionPair(kind);
    responder.on('open', echoResponder);
    const runs: Promise<void>[] = [];
    for (let i = 0; i < 1000; i++) {
      const data = randomBytes(1 + Math.floor(Math.random() * 24_000));
      const channel = initiator.openChannel({ host: 'echo', port: i + 1 });
      runs.push(
        (async () => {
          const received = digestStream(channel);
          await writeChunked(channel, data, 8000);
          const r = await received;
          expect(r.bytes).toBe(data.length);
          expect(r.hash).toBe(sha256(data));
        })(),
      );
    }
    await Promise.all(runs);
    expect(initiator.channelCount).toBe(0);
    await cleanup();
  }, 60_000);

  it('bounds what a sender buffers when the reader stops reading', async () => {
    const { initiator, responder, cleanup } = await sessionPair(kind, { keepaliveIntervalMs: 0 });
    const remote = new Promise<Channel>((resolve) => responder.on('open', (r) => resolve(r.accept())));
    const channel = initiator.openChannel({ host: 'slow', port: 1 });
    const chunk = Buffer.alloc(64 * 1024, 7);
    let _written = 0;
    // Write until the channel pushes back, then give the pipe time to settle.
    for (let i = 0; i < 200 && channel.write(chunk); i++) _written += chunk.length;
    const reader = await remote; // never reads
    // About time passing: the writer keeps trying for a while and the bound must hold throughout
    // (no event marks "nothing more got through").
    for (let round = 0; round < 20; round++) {
      await new Promise((r) => setTimeout(r, 10));
      if (channel.write(chunk)) _written += chunk.length;
    }
    const received = reader.unreadBytes;
    // The receiver holds at most one window; the sender queues at most its send buffer plus one write.
    expect(received).toBeLessThanOrEqual(reader.recvWindow.size);
    expect(reader.recvWindow.size).toBe(256 * 1024);
    expect(channel.pendingBytes).toBeLessThanOrEqual(initiator.config.channelSendBuffer + chunk.length);
    expect(channel.writableLength).toBeLessThanOrEqual(channel.writableHighWaterMark + 20 * chunk.length);
    // The reader starts reading: everything arrives.
    const all = digestStream(reader);
    channel.end();
    const r = await all;
    expect(r.bytes).toBeGreaterThan(received);
    await cleanup();
  });

  it('lets an interactive channel through while a bulk channel saturates the session', async () => {
    const { initiator, responder, cleanup, initiatorTransport } = await sessionPair(kind);
    // Watch what the initiator's mux hands its transport: DATA bytes per channel, in wire order.
    let bulkSent = 0;
    let interactiveSentAt: number | undefined;
    const wireSend = initiatorTransport.send.bind(initiatorTransport);
    initiatorTransport.send = (parts) => {
      const message = Buffer.concat(parts);
      for (let at = 0; at + HEADER_SIZE <= message.length; ) {
        const type = message[at]!;
        const channelId = message.readUInt32BE(at + 2);
        const length = message.readUInt32BE(at + 6);
        if (type === FrameType.DATA && channelId === 1) bulkSent += length;
        if (type === FrameType.DATA && channelId === 3 && interactiveSentAt === undefined) interactiveSentAt = bulkSent;
        at += HEADER_SIZE + length;
      }
      return wireSend(parts);
    };
    responder.on('open', (request) => {
      const channel = request.accept();
      channel.on('error', () => {});
      if (request.target.service === 'bulk') channel.resume();
      else channel.pipe(channel);
    });
    const bulk = initiator.openChannel({ host: 'x', port: 1, service: 'bulk' });
    bulk.on('error', () => {});
    let stop = false;
    const block = Buffer.alloc(256 * 1024, 1);
    const pump = (async () => {
      for (let i = 0; i < 4000 && !stop; i++) {
        if (!bulk.write(block)) await once(bulk, 'drain');
      }
    })();
    const interactive = initiator.openChannel({ host: 'x', port: 2, service: 'ping' });
    await until(() => bulkSent >= 4 * 1024 * 1024 && bulk.writableLength > 0, 10_000, 'bulk flowing with data queued');
    const ahead: number[] = [];
    for (let i = 0; i < 20; i++) {
      interactiveSentAt = undefined;
      const before = bulkSent;
      interactive.write(Buffer.alloc(64, i));
      await once(interactive, 'data');
      ahead.push((interactiveSentAt ?? Infinity) - before);
    }
    stop = true;
    await pump;
    bulk.destroy();
    // Bulk bytes the scheduler may put on the wire ahead of one interactive frame: the rest of
    // the batch being built plus one slice, never the megabytes the bulk writer has queued.
    const bound = initiator.config.maxBatchBytes + initiator.config.schedulerSlice;
    expect(Math.max(...ahead)).toBeLessThanOrEqual(bound);
    expect(bulkSent).toBeGreaterThan(4 * 1024 * 1024);
    await cleanup();
  });

  it('GOAWAY refuses new channels and lets open ones finish', async () => {
    const { initiator, responder, cleanup } = await sessionPair(kind);
    responder.on('open', echoResponder);
    const channel = initiator.openChannel({ host: 'x', port: 1 });
    const data = randomBytes(500_000);
    const received = digestStream(channel);
    channel.write(data.subarray(0, 1000));
    await once(channel, 'data');
    const goaway = once(initiator, 'goaway');
    const closed = responder.goAway('redeploy');
    await goaway;
    const late = initiator.openChannel({ host: 'x', port: 2 });
    expect((await once<DevstreamsError>(late, 'error')).code).toBe('ERR_SESSION_GOAWAY');
    channel.end(data.subarray(1000));
    expect((await received).hash).toBe(sha256(data));
    await closed;
    expect(responder.closed).toBe(true);
    await cleanup();
  });

  it('ends a dead session with ERR_KEEPALIVE_TIMEOUT', async () => {
    const { initiator, responder, cleanup } = await sessionPair(kind, { keepaliveIntervalMs: 50, keepaliveTimeoutMs: 100 });
    responder.on('open', echoResponder);
    const channel = initiator.openChannel({ host: 'x', port: 1 });
    channel.on('error', () => {});
    // Freeze the responder: it stops answering anything, as a hung peer would.
    (responder as unknown as { onMessage: (m: Buffer) => void }).onMessage = () => {};
    const error = await once<DevstreamsError | undefined>(initiator, 'close');
    expect(error?.code).toBe('ERR_KEEPALIVE_TIMEOUT');
    expect(channel.destroyed).toBe(true);
    await cleanup();
  });

  it('grows a channel window when the window, not the link, limits throughput', async () => {
    const { initiator, responder, cleanup } = await sessionPair(kind);
    const remote = new Promise<Channel>((resolve) => responder.on('open', (r) => resolve(r.accept())));
    const channel = initiator.openChannel({ host: 'x', port: 1 });
    const data = Buffer.alloc(32 * 1024 * 1024, 3);
    const reader = await remote;
    const done = digestStream(reader);
    await writeChunked(channel, data, 1 << 20);
    expect((await done).bytes).toBe(data.length);
    expect(reader.recvWindow.size).toBeLessThanOrEqual(responder.config.maxWindow);
    await cleanup();
  });
});

describe('window auto-tuning on a long link', () => {
  /** Two sessions over an in-memory link with a one-way delay and room for many windows. */
  function longLink(delayMs: number): { initiator: Session; responder: Session } {
    const [a, b] = createMemoryTransportPair({ delayMs, highWaterMark: 64 * 1024 * 1024 });
    return { initiator: new Session(a, { role: 'initiator' }), responder: new Session(b, { role: 'responder' }) };
  }

  it('grows the window toward bandwidth x delay, and new channels start from what it learned', async () => {
    const { initiator, responder } = longLink(20);
    const readers: Channel[] = [];
    responder.on('open', (r) => readers.push(r.accept()));
    await once(initiator, 'rtt'); // the first ping measures the round trip
    const first = initiator.openChannel({ host: 'x', port: 1 });
    const firstDone = new Promise<void>((resolve) => {
      const check = (): void => (readers[0] ? void digestStream(readers[0]).then(() => resolve()) : void setTimeout(check, 5));
      check();
    });
    await writeChunked(first, Buffer.alloc(24 * 1024 * 1024, 1), 1 << 20);
    await firstDone;
    const grown = readers[0]!.recvWindow.size;
    // At 40 ms per round trip a 256 KiB window carries 6.5 MB/s; the memory link carries far more.
    expect(grown).toBeGreaterThan(1024 * 1024);
    expect(grown).toBeLessThanOrEqual(responder.config.maxWindow);
    const second = initiator.openChannel({ host: 'x', port: 2 });
    second.end('x');
    await until(() => readers[1] !== undefined, 5000, 'the second channel');
    expect(readers[1]!.recvWindow.size).toBe(grown);
    readers[1]!.resume();
    initiator.close();
    responder.close();
  }, 30_000);

  it('does not grow windows on a short link, where round trips are not what limits throughput', async () => {
    const { initiator, responder } = longLink(0);
    const reader = new Promise<Channel>((resolve) => responder.on('open', (r) => resolve(r.accept())));
    await once(initiator, 'rtt'); // the first ping has measured the round trip, as in the long-link case
    const channel = initiator.openChannel({ host: 'x', port: 1 });
    const r = await reader;
    // A reader slower than the link: it drains 64 KiB every 20 ms, far below what one window
    // allows. The window grows when half of it is consumed within two round trips of the last
    // grant: at 20 ms per 64 KiB that takes 40 ms, so a round trip measured on a busy machine (a
    // late first ping, some ms) cannot make the reader look fast, as it could at 5 ms per 64 KiB.
    r.pause();
    const drain = setInterval(() => r.read(65536), 20);
    for (let i = 0; i < 60; i++) if (!channel.write(Buffer.alloc(64 * 1024))) await once(channel, 'drain');
    clearInterval(drain);
    expect(r.recvWindow.size).toBe(256 * 1024);
    initiator.close();
    responder.close();
  }, 30_000);
});

function digestStreamText(stream: Channel): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', () => resolve(Buffer.concat(chunks).toString()));
    stream.once('error', reject);
  });
}
