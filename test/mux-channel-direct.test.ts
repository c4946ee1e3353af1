import { describe, expect, it } from 'vitest';
import type { Channel, OpenRequest } from '../src/mux/index.js';
import { Session } from '../src/mux/index.js';
import { createMemoryTransportPair } from '../src/transport/index.js';
import { until } from './helpers/until.js';

/**
 * A channel takes a plain write straight into its send queue, and hands received data straight
 * to its 'data' listeners, whenever the Writable / Readable has nothing queued (channel.ts). These
 * mix such writes and reads with the ordinary paths (corked, past channelSendBuffer, with a
 * callback, paused, with a 'readable' reader) and check that every byte arrives once, in order,
 * followed by the end.
 */
function pair(channelSendBuffer: number): { opener: Session; acceptor: Session; accepted: Promise<Channel> } {
  const [a, b] = createMemoryTransportPair();
  let resolve!: (c: Channel) => void;
  const accepted = new Promise<Channel>((r) => (resolve = r));
  const opener = new Session(a, { role: 'initiator', keepaliveIntervalMs: 0, channelSendBuffer });
  const acceptor = new Session(b, {
    role: 'responder',
    keepaliveIntervalMs: 0,
    onOpen: (request: OpenRequest) => resolve(request.accept()),
  });
  return { opener, acceptor, accepted };
}

function pattern(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (seed + i * 7) & 0xff;
  return b;
}

describe('channel writes and reads that skip the stream machinery', () => {
  it('keep order and end with direct, corked, held and callback writes mixed', async () => {
    const { opener, acceptor, accepted } = pair(1024);
    const channel = opener.openChannel({ host: 'h', port: 1 });
    const sent: Buffer[] = [];
    const write = (b: Buffer, how: 'plain' | 'callback' = 'plain'): void => {
      sent.push(b);
      // The callback's error is typed as on any Writable (tsc over the tests checks it).
      if (how === 'callback') channel.write(b, (err) => expect(err?.message).toBeUndefined());
      else channel.write(b);
    };
    write(pattern(64, 1)); // direct
    channel.cork();
    write(pattern(10, 2)); // corked: the ordinary path
    write(pattern(20, 3));
    channel.uncork();
    write(pattern(64, 4));
    write(pattern(3000, 5)); // past channelSendBuffer (1 KiB): its callback is held
    write(pattern(64, 6)); // behind a held write: queued in the Writable, in order
    write(pattern(5, 7), 'callback');
    for (let i = 0; i < 50; i++) write(pattern(1 + (i % 90), 8 + i));
    channel.end();
    const remote = await accepted;
    const got: Buffer[] = [];
    remote.on('data', (d: Buffer) => got.push(Buffer.from(d)));
    let ended = false;
    remote.on('end', () => (ended = true));
    await until(() => ended, 5000, 'end');
    expect(Buffer.concat(got).equals(Buffer.concat(sent))).toBe(true);
    opener.close();
    acceptor.close();
  });

  it('deliver in order to a reader that pauses, resumes and switches to read()', async () => {
    const { opener, acceptor, accepted } = pair(256 * 1024);
    const channel = opener.openChannel({ host: 'h', port: 1 });
    const sent: Buffer[] = [];
    const remote = await (async () => {
      sent.push(pattern(100, 1));
      channel.write(sent[0]!);
      return accepted;
    })();
    const got: Buffer[] = [];
    const onData = (d: Buffer): void => {
      got.push(Buffer.from(d));
    };
    remote.on('data', onData);
    for (let round = 0; round < 20; round++) {
      const b = pattern(50 + round * 13, round);
      sent.push(b);
      channel.write(b);
      if (round % 5 === 2) remote.pause(); // what arrives now is buffered by the Readable
      if (round % 5 === 4) remote.resume(); // the buffer goes first, then direct deliveries
      await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setImmediate(r));
    remote.off('data', onData);
    remote.pause();
    const tail = pattern(777, 99);
    sent.push(tail);
    channel.write(tail);
    channel.end();
    // No 'data' listener now: a 'readable' reader takes the rest.
    let ended = false;
    remote.on('end', () => (ended = true));
    remote.on('readable', () => {
      for (let c = remote.read() as Buffer | null; c !== null; c = remote.read() as Buffer | null) got.push(Buffer.from(c));
    });
    await until(() => ended, 5000, 'end');
    expect(Buffer.concat(got).equals(Buffer.concat(sent))).toBe(true);
    opener.close();
    acceptor.close();
  });

  it('deliver strings to a reader that set an encoding, a character split across frames whole', async () => {
    const { opener, acceptor, accepted } = pair(256 * 1024);
    const channel = opener.openChannel({ host: 'h', port: 1 });
    const text = Buffer.from('€ and ✓, then ascii', 'utf8');
    channel.write(text.subarray(0, 1)); // the first byte of '€' alone in a frame
    const remote = await accepted;
    remote.setEncoding('utf8');
    const got: unknown[] = [];
    remote.on('data', (d: unknown) => got.push(d));
    await new Promise((r) => setTimeout(r, 20));
    for (let at = 1; at < text.length; at += 2) {
      channel.write(text.subarray(at, at + 2));
      await new Promise((r) => setImmediate(r));
    }
    channel.end();
    let ended = false;
    remote.on('end', () => (ended = true));
    await until(() => ended, 5000, 'end');
    expect(got.every((d) => typeof d === 'string')).toBe(true);
    expect(got.join('')).toBe(text.toString('utf8'));
    opener.close();
    acceptor.close();
  });
});
