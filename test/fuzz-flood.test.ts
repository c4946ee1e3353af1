// Property: whatever frames a peer sends, and however many, a session whose peer never reads holds
// a bounded amount: what its transport took before saying stop, the control backlog
// (maxControlBacklog), and what channels received within their windows. A peer past the backlog
// loses the session with ERR_PROTOCOL_FLOOD; any other end is a coded protocol error; afterwards
// the session holds nothing.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DevstreamsError } from '../src/errors.js';
import { Session, type Channel } from '../src/mux/index.js';
import { FrameType, INITIAL_SESSION_WINDOW, INITIAL_WINDOW, MAX_FRAME_PAYLOAD_LIMIT, PROTOCOL_VERSION } from '../src/mux/constants.js';
import { encodeFrame, encodePing, encodeReset, encodeStructured, encodeWindow } from '../src/mux/frame.js';
import { FUZZ_TIMEOUT_MS, fuzzParams } from './helpers/fuzz.js';
import { StuckTransport } from './helpers/stuck-transport.js';

const BACKLOG = 16 * 1024;
const HIGH_WATER = 32 * 1024;
const MAX_BATCH = 64 * 1024 + 512;

/** One burst of the peer: `count` frames of one kind. Channel refs index the peer's own opens. */
type Burst =
  | { op: 'ping'; count: number }
  | { op: 'open'; count: number; port: number }
  | { op: 'data'; count: number; ch: number; bytes: number }
  | { op: 'stray'; count: number; bytes: number }
  | { op: 'window'; count: number; ch: number; inc: number }
  | { op: 'close'; ch: number }
  | { op: 'reset'; ch: number }
  | { op: 'pong'; count: number }
  | { op: 'garbage'; bytes: Uint8Array };

const count = fc.integer({ min: 1, max: 3000 });
const burstArb: fc.Arbitrary<Burst> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('ping' as const), count }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('open' as const),
      count: fc.integer({ min: 1, max: 1500 }),
      port: fc.integer({ min: 1, max: 65535 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('data' as const),
      count: fc.integer({ min: 1, max: 20 }),
      ch: fc.nat(40),
      bytes: fc.integer({ min: 0, max: 16 * 1024 }),
    }),
  },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('stray' as const), count, bytes: fc.integer({ min: 0, max: 64 }) }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('window' as const),
      count: fc.integer({ min: 1, max: 50 }),
      ch: fc.nat(40),
      inc: fc.integer({ min: 0, max: 1 << 16 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('close' as const), ch: fc.nat(40) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reset' as const), ch: fc.nat(40) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('pong' as const), count }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('garbage' as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }) }) },
);

const hello = (): Buffer =>
  encodeStructured(FrameType.HELLO, 0, {
    version: PROTOCOL_VERSION,
    initialWindow: INITIAL_WINDOW,
    sessionWindow: INITIAL_SESSION_WINDOW,
    maxFramePayload: MAX_FRAME_PAYLOAD_LIMIT,
  });

/** Turns bursts into messages (each at most one batch of frames), as the initiator would send them. */
function* messages(bursts: readonly Burst[]): Generator<Buffer> {
  const opened: number[] = [];
  let nextOpen = 1;
  let stray = 1_000_001;
  const ref = (ch: number): number => opened[ch % Math.max(1, opened.length)] ?? 1;
  yield hello();
  for (const b of bursts) {
    const frames: Buffer[] = [];
    switch (b.op) {
      case 'ping':
        for (let i = 0; i < b.count; i++) frames.push(encodePing(FrameType.PING, Buffer.alloc(8, i)));
        break;
      case 'pong':
        for (let i = 0; i < b.count; i++) frames.push(encodePing(FrameType.PONG, Buffer.alloc(8, i)));
        break;
      case 'open':
        for (let i = 0; i < b.count; i++) {
          frames.push(encodeStructured(FrameType.OPEN, nextOpen, { host: '127.0.0.1', port: b.port }));
          opened.push(nextOpen);
          nextOpen += 2;
        }
        break;
      case 'data':
        for (let i = 0; i < b.count; i++) frames.push(encodeFrame(FrameType.DATA, ref(b.ch), Buffer.alloc(b.bytes, 0x61)));
        break;
      case 'stray':
        for (let i = 0; i < b.count; i++) frames.push(encodeFrame(FrameType.DATA, (stray += 2), Buffer.alloc(b.bytes)));
        break;
      case 'window':
        for (let i = 0; i < b.count; i++) frames.push(encodeWindow(ref(b.ch), b.inc));
        break;
      case 'close':
        frames.push(encodeFrame(FrameType.CLOSE, ref(b.ch)));
        break;
      case 'reset':
        frames.push(encodeReset(ref(b.ch), 1, 'fuzz'));
        break;
      case 'garbage':
        frames.push(Buffer.from(b.bytes));
        break;
    }
    // Messages of at most about 64 KiB, like the transports below carry.
    let batch: Buffer[] = [];
    let size = 0;
    for (const f of frames) {
      if (size + f.length > 64 * 1024 && batch.length > 0) {
        yield Buffer.concat(batch);
        batch = [];
        size = 0;
      }
      batch.push(f);
      size += f.length;
    }
    if (batch.length > 0) yield Buffer.concat(batch);
  }
}

describe('fuzz: a peer that never reads', () => {
  it(
    'arbitrary frame sequences: what the session holds stays within its bound; a flood ends it with ERR_PROTOCOL_FLOOD',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.array(burstArb, { minLength: 1, maxLength: 30 }),
          fc.integer({ min: 1, max: 8 }),
          async (bursts, maxChannels) => {
            const link = new StuckTransport(HIGH_WATER);
            const sessionWindow = 4 * 1024 * 1024;
            const session = new Session(link, {
              role: 'responder',
              keepaliveIntervalMs: 0,
              maxControlBacklog: BACKLOG,
              maxChannels,
              sessionWindow,
            });
            const accepted: Channel[] = [];
            // Like a device proxy: accepts some, refuses others, and never reads (its target is slow).
            session.on('open', (req) => {
              if (req.target.port % 2 === 0) return req.refuse('ERR_TARGET_NOT_ALLOWED', 'not on the allow list');
              const ch = req.accept();
              ch.on('error', () => {});
              ch.pause();
              accepted.push(ch);
            });
            let closeError: DevstreamsError | undefined;
            session.on('close', (e) => (closeError = e));
            // Bound: what the transport took before it said stop (one batch may go past its mark),
            // the control backlog, what channels hold within the session window, and one frame in the decoder.
            const bound = HIGH_WATER + MAX_BATCH + BACKLOG + sessionWindow + MAX_FRAME_PAYLOAD_LIMIT;
            for (const m of messages(bursts)) {
              if (session.closed) break;
              link.inject(m);
              await Promise.resolve();
              const unread = accepted.reduce((n, ch) => n + ch.readableLength, 0);
              expect(link.unread + session.controlBacklog + unread).toBeLessThanOrEqual(bound);
              expect(session.controlBacklog).toBeLessThanOrEqual(BACKLOG);
            }
            if (closeError) {
              expect(closeError).toBeInstanceOf(DevstreamsError);
              expect(closeError.code, closeError.message).toMatch(/^ERR_PROTOCOL_/);
            }
            session.close();
            expect(session.controlBacklog).toBe(0);
            expect(session.channelCount).toBe(0);
            expect(link.closed).toBe(true);
          },
        ),
        fuzzParams(150, 0.05),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    'a flood of any one kind of answer ends the session with ERR_PROTOCOL_FLOOD',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.constantFrom<Burst['op']>('ping', 'open', 'stray'), async (op) => {
          const link = new StuckTransport(HIGH_WATER);
          const session = new Session(link, { role: 'responder', keepaliveIntervalMs: 0, maxControlBacklog: BACKLOG });
          session.on('open', (req) => req.refuse('ERR_TARGET_NOT_ALLOWED', 'no'));
          let closeError: DevstreamsError | undefined;
          session.on('close', (e) => (closeError = e));
          const burst =
            op === 'open'
              ? { op, count: 1500, port: 2 }
              : op === 'stray'
                ? { op, count: 3000, bytes: 0 }
                : { op: 'ping' as const, count: 3000 };
          for (const m of messages(Array.from({ length: 40 }, () => burst as Burst))) {
            if (session.closed) break;
            link.inject(m);
            await Promise.resolve();
          }
          expect(closeError?.code).toBe('ERR_PROTOCOL_FLOOD');
        }),
        { numRuns: 3 },
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});
