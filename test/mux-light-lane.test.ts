// The light lane: while the transport below reports backpressure (a bulk transfer keeps it full
// until an acknowledgement frees room), control frames and channels with little queued still go
// out, up to lightLaneBytes between two drains; heavy channels wait for the drain as before.
import { afterEach, describe, expect, it } from 'vitest';
import { type Channel, type OpenRequest, Session } from '../src/mux/index.js';
import { FrameType, HEADER_SIZE, MAX_FRAME_PAYLOAD_LIMIT } from '../src/mux/constants.js';
import { FrameDecoder } from '../src/mux/decoder.js';
import { DevstreamsError } from '../src/errors.js';
import { StuckTransport } from './helpers/stuck-transport.js';
import { encodeWindow } from '../src/mux/frame.js';
import { helloFrame, openFrame } from './helpers/mux-frames.js';

const HIGH_WATER = 64 * 1024;

/** A transport that keeps what the session handed it, and says stop past HIGH_WATER unread. */
class RecordingTransport extends StuckTransport {
  readonly sent: Buffer[] = [];
  override send(parts: readonly Buffer[]): boolean {
    this.sent.push(Buffer.concat(parts));
    return super.send(parts);
  }
  /** Everything sent so far contains `pattern`. */
  carried(pattern: Buffer): boolean {
    return Buffer.concat(this.sent).includes(pattern);
  }
}

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A responder session, its two channels (bulk, interactive) opened by the test playing the peer. */
async function setUp(lightLaneBytes?: number): Promise<{ link: RecordingTransport; session: Session; bulk: Channel; key: Channel }> {
  const link = new RecordingTransport(HIGH_WATER);
  const channels: Channel[] = [];
  const session = new Session(link, {
    role: 'responder',
    keepaliveIntervalMs: 0,
    ...(lightLaneBytes === undefined ? {} : { lightLaneBytes }),
    onOpen: (request) => channels.push(request.accept()),
  });
  cleanups.push(() => session.close());
  link.inject(helloFrame());
  link.inject(openFrame(1, 1));
  link.inject(openFrame(3, 2));
  await nextTurn();
  expect(channels).toHaveLength(2);
  return { link, session, bulk: channels[0]!, key: channels[1]! };
}

/** Fills the transport past its high-water mark with the bulk channel's data. */
async function block(link: RecordingTransport, bulk: Channel): Promise<void> {
  bulk.write(Buffer.alloc(200 * 1024, 0x62));
  await nextTurn();
  expect(link.unread).toBeGreaterThan(HIGH_WATER); // the transport said stop
}

describe('the light lane past a blocked transport', () => {
  it('a keystroke on a light channel goes out while a bulk channel keeps the transport blocked', async () => {
    const { link, bulk, key } = await setUp();
    await block(link, bulk);
    const bulkBefore = link.unread;
    const keystroke = Buffer.from('keystroke-0123456789-keystroke');
    key.write(keystroke);
    await nextTurn();
    expect(link.carried(keystroke)).toBe(true);
    // Only the keystroke's frame went: the bulk channel still waits for the drain.
    expect(link.unread - bulkBefore).toBeLessThan(1024);
    link.readAll();
    await nextTurn();
    expect(link.unread).toBeGreaterThan(HIGH_WATER); // the drain lets the bulk channel go on
  });

  it('with lightLaneBytes 0 the keystroke waits for the drain, as before the lane', async () => {
    const { link, bulk, key } = await setUp(0);
    await block(link, bulk);
    const keystroke = Buffer.from('keystroke-0123456789-keystroke');
    key.write(keystroke);
    await nextTurn();
    expect(link.carried(keystroke)).toBe(false);
    link.readAll();
    await nextTurn();
    expect(link.carried(keystroke)).toBe(true);
  });

  it('sends at most lightLaneBytes past backpressure until the next drain', async () => {
    const lane = 16 * 1024;
    const { link, bulk, key } = await setUp(lane);
    await block(link, bulk);
    const before = link.unread;
    for (let i = 0; i < 40; i++) {
      key.write(Buffer.alloc(1000, 0x6b));
      await nextTurn();
    }
    expect(link.unread - before).toBeLessThanOrEqual(lane);
    expect(link.unread - before).toBeGreaterThan(lane / 2);
  });

  it('a channel with more than a few KiB queued is not light: it waits for the drain', async () => {
    const { link, bulk, key } = await setUp();
    await block(link, bulk);
    const before = link.unread;
    key.write(Buffer.alloc(32 * 1024, 0x6b));
    await nextTurn();
    expect(link.unread - before).toBe(0);
  });
});

describe('the light lane and the session window', () => {
  it('a session WINDOW that arrives while the transport is blocked lets a waiting keystroke go through the lane', async () => {
    // Four bulk channels spend the peer's whole session window (1 MiB, four channel windows of
    // 256 KiB); the transport says stop after every batch (high-water mark 4 KiB) and the test
    // reads it empty each time, until no session credit is left and the last batch blocked it.
    const highWater = 4 * 1024;
    const link = new RecordingTransport(highWater);
    const channels: Channel[] = [];
    const session = new Session(link, { role: 'responder', keepaliveIntervalMs: 0, onOpen: (r) => channels.push(r.accept()) });
    cleanups.push(() => session.close());
    link.inject(helloFrame());
    for (const id of [1, 3, 5, 7, 9]) link.inject(openFrame(id, id));
    await nextTurn();
    expect(channels).toHaveLength(5);
    const key = channels[4]!;
    const windowBytes = 256 * 1024;
    for (const bulk of channels.slice(0, 4)) bulk.write(Buffer.alloc(windowBytes + 4096, 0x62));
    const dataBytes = (): number => countData(Buffer.concat(link.sent));
    for (let i = 0; i < 200 && dataBytes() < 4 * windowBytes; i++) {
      link.readAll();
      await nextTurn();
    }
    expect(dataBytes()).toBe(4 * windowBytes); // the session window is spent
    expect(link.unread).toBeGreaterThan(highWater); // and the transport is blocked

    const keystroke = Buffer.from('keystroke-session-window-keystroke');
    key.write(keystroke);
    await nextTurn();
    expect(link.carried(keystroke)).toBe(false); // no session credit: it waits
    link.inject(encodeWindow(0, 64 * 1024));
    await nextTurn();
    expect(link.carried(keystroke)).toBe(true); // the new credit goes to it, past the backpressure
  });
});

/** DATA payload bytes in a run of whole frames. */
function countData(wire: Buffer): number {
  let n = 0;
  for (let at = 0; at + HEADER_SIZE <= wire.length; ) {
    const length = wire.readUInt32BE(at + 6);
    if (wire[at] === FrameType.DATA) n += length;
    at += HEADER_SIZE + length;
  }
  return n;
}

describe('the light lane keeps each channel behind its own control frames', () => {
  it("a channel's DATA and CLOSE do not pass its ACCEPT when the lane has no room for every control frame", async () => {
    // The lane has room for ACCEPT 1 and a 1-byte DATA + CLOSE (31 bytes), not for the RESET
    // queued behind ACCEPT 1, and so not for ACCEPT 3 behind that.
    const link = new RecordingTransport(0); // the first message (our HELLO) already blocks
    const requests: OpenRequest[] = [];
    const session = new Session(link, {
      role: 'responder',
      keepaliveIntervalMs: 0,
      lightLaneBytes: 2 * HEADER_SIZE + HEADER_SIZE + 1,
      onOpen: (request) => requests.push(request),
    });
    cleanups.push(() => session.close());
    await nextTurn();
    expect(link.unread).toBeGreaterThan(0); // blocked
    link.inject(helloFrame());
    link.inject(openFrame(1, 1));
    link.inject(openFrame(3, 2));
    expect(requests).toHaveLength(2);
    requests[0]!.accept().reset('ERR_CHANNEL_RESET', 'r'.repeat(100));
    const key = requests[1]!.accept();
    key.end(Buffer.from('k')); // a short answer, then EOF: light, DATA and CLOSE together
    await nextTurn();
    link.readAll(); // the drain: everything else may go now
    await nextTurn();

    // The opener, fed everything this side sent in order, must see ACCEPT 3 before DATA/CLOSE 3
    // (a CLOSE before the ACCEPT is a protocol error that ends its whole session).
    const peerLink = new StuckTransport(1 << 30);
    const peer = new Session(peerLink, { role: 'initiator', keepaliveIntervalMs: 0 });
    cleanups.push(() => peer.close());
    peer.openChannel({ host: '127.0.0.1', port: 1 }).on('error', () => {});
    const opened = peer.openChannel({ host: '127.0.0.1', port: 2 });
    opened.on('error', () => {}); // the session's end, if any, is asserted below
    const received: Buffer[] = [];
    opened.on('data', (d: Buffer) => received.push(d));
    const ended = new Promise<void>((resolve) => opened.on('end', resolve));
    const closed: Array<Error | undefined> = [];
    peer.on('close', (e) => closed.push(e));
    for (const message of link.sent) peerLink.inject(message);
    expect(closed.map((e) => e?.message)).toEqual([]);
    await ended;
    expect(Buffer.concat(received).toString()).toBe('k');
  });
});

describe('the last frames before the transport closes', () => {
  /** The frame types an initiator sent, once its transport was blocked by the first message. */
  async function blockedSession(): Promise<{ link: RecordingTransport; session: Session; types: () => number[] }> {
    const link = new RecordingTransport(0);
    const session = new Session(link, { role: 'initiator', keepaliveIntervalMs: 0 });
    cleanups.push(() => session.close());
    await nextTurn();
    const types = (): number[] => {
      const seen: number[] = [];
      new FrameDecoder(MAX_FRAME_PAYLOAD_LIMIT).push(Buffer.concat(link.sent), (type) => seen.push(type));
      return seen;
    };
    return { link, session, types };
  }

  it('goAway with no channel left sends its GOAWAY through the lane when the transport is blocked', async () => {
    const { link, session, types } = await blockedSession();
    await session.goAway('bye');
    expect(link.closed).toBe(true);
    expect(types()).toContain(FrameType.GOAWAY);
  });

  it('close(error) tells the peer why through the lane when the transport is blocked', async () => {
    const { link, session, types } = await blockedSession();
    session.close(new DevstreamsError('ERR_KEEPALIVE_TIMEOUT', 'no answer'));
    expect(link.closed).toBe(true);
    expect(types()).toContain(FrameType.GOAWAY);
  });
});
