// Fuzzing the mux: the frame decoder and a live Session fed random and mutated frame streams
// (bit flips, truncation, length fields past the end or huge, wrong types, frames out of state).
// Every rejection must be a DevstreamsError with an ERR_PROTOCOL_* code that ends the session;
// nothing may throw out of the receive path; buffered bytes stay bounded; heap does not grow.
import net from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DevstreamsError } from '../src/errors.js';
import { Session } from '../src/mux/index.js';
import { FrameDecoder } from '../src/mux/decoder.js';
import {
  FrameType,
  HEADER_SIZE,
  INITIAL_SESSION_WINDOW,
  INITIAL_WINDOW,
  MAX_FRAME_PAYLOAD_LIMIT,
  PROTOCOL_VERSION,
} from '../src/mux/constants.js';
import { encodeFrame, encodePing, encodeReset, encodeStructured, encodeWindow } from '../src/mux/frame.js';
import { createMemoryTransportPair, TcpTransport } from '../src/transport/index.js';
import { FUZZ_TIMEOUT_MS, fuzzParams, heapAfterGc, mutate, mutationArb, splitAt } from './helpers/fuzz.js';

/** One step of an attacker's script; ids are indexes into the channels it opened (or raw ids). */
type Op =
  | { op: 'open'; port: number; service?: string }
  | { op: 'data'; ch: number; bytes: number }
  | { op: 'window'; ch: number; inc: number }
  | { op: 'close'; ch: number }
  | { op: 'reset'; ch: number; code: number }
  | { op: 'accept'; ch: number }
  | { op: 'ping' }
  | { op: 'pong' }
  | { op: 'hello' }
  | { op: 'goaway'; code: number }
  | { op: 'raw'; type: number; channel: number; payload: Uint8Array };

const chRef = fc.oneof(fc.integer({ min: 0, max: 7 }), fc.constantFrom(-1, 0xfffffffe, 0xffffffff));
const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record(
      {
        op: fc.constant('open' as const),
        port: fc.integer({ min: 0, max: 65535 }),
        service: fc.option(fc.string({ maxLength: 70 }), { nil: undefined }),
      },
      { requiredKeys: ['op', 'port'] },
    ),
  },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('data' as const), ch: chRef, bytes: fc.integer({ min: 0, max: 3000 }) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('window' as const),
      ch: chRef,
      inc: fc.oneof(fc.integer({ min: 0, max: 1 << 20 }), fc.constantFrom(0x7fffffff, 0xffffffff)),
    }),
  },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('close' as const), ch: chRef }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reset' as const), ch: chRef, code: fc.integer({ min: 0, max: 0xffff }) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('accept' as const), ch: chRef }) },
  { weight: 1, arbitrary: fc.constant({ op: 'ping' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'pong' as const }) },
  { weight: 1, arbitrary: fc.constant({ op: 'hello' as const }) },
  {
    weight: 1,
    arbitrary: fc.record({ op: fc.constant('goaway' as const), code: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('raw' as const),
      type: fc.integer({ min: 0, max: 12 }),
      channel: fc.oneof(fc.integer({ min: 0, max: 9 }), fc.nat()),
      payload: fc.uint8Array({ maxLength: 64 }),
    }),
  },
);

const hello = (): Buffer =>
  encodeStructured(FrameType.HELLO, 0, {
    version: PROTOCOL_VERSION,
    initialWindow: INITIAL_WINDOW,
    sessionWindow: INITIAL_SESSION_WINDOW,
    maxFramePayload: MAX_FRAME_PAYLOAD_LIMIT,
  });

/** Encodes the script as the initiator would (odd channel ids), mostly valid, sometimes not. */
function encodeScript(ops: readonly Op[]): Buffer {
  const frames: Buffer[] = [hello()];
  const opened: number[] = [];
  let next = 1;
  const id = (ch: number): number => (ch >= 0 && ch < 8 ? (opened[ch % Math.max(1, opened.length)] ?? ch) : ch >>> 0);
  for (const o of ops) {
    switch (o.op) {
      case 'open': {
        const meta: Record<string, unknown> = { host: '127.0.0.1', port: o.port };
        if (o.service !== undefined) meta.service = o.service;
        frames.push(encodeStructured(FrameType.OPEN, next, meta));
        opened.push(next);
        next += 2;
        break;
      }
      case 'data':
        frames.push(encodeFrame(FrameType.DATA, id(o.ch), Buffer.alloc(o.bytes, 0x61)));
        break;
      case 'window':
        frames.push(encodeWindow(id(o.ch), o.inc));
        break;
      case 'close':
        frames.push(encodeFrame(FrameType.CLOSE, id(o.ch)));
        break;
      case 'reset':
        frames.push(encodeReset(id(o.ch), o.code, 'fuzz'));
        break;
      case 'accept':
        frames.push(encodeFrame(FrameType.ACCEPT, id(o.ch)));
        break;
      case 'ping':
        frames.push(encodePing(FrameType.PING, Buffer.alloc(8, 1)));
        break;
      case 'pong':
        frames.push(encodePing(FrameType.PONG, Buffer.alloc(8, 2)));
        break;
      case 'hello':
        frames.push(hello());
        break;
      case 'goaway':
        frames.push(encodeStructured(FrameType.GOAWAY, 0, { code: o.code, message: 'fuzz' }));
        break;
      case 'raw':
        frames.push(encodeFrame(o.type, o.channel, Buffer.from(o.payload)));
        break;
    }
  }
  return Buffer.concat(frames);
}

const inputArb = fc.record({
  ops: fc.array(opArb, { maxLength: 40 }),
  mutations: fc.array(mutationArb, { maxLength: 3 }),
  cuts: fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }),
});

/** A rejection the session may end with: a protocol error, or the peer's own GOAWAY error code. */
function isCodedRejection(err: DevstreamsError): boolean {
  return err.code.startsWith('ERR_PROTOCOL_') || err.message.startsWith('peer ended the session');
}

const FRAME_BOUND = HEADER_SIZE + MAX_FRAME_PAYLOAD_LIMIT;

interface Outcome {
  closed: boolean;
  error: DevstreamsError | undefined;
  buffered: number;
  channels: number;
}

/** Feeds `chunks` to a responder session over a memory pair; returns what became of it. */
async function feedSession(chunks: readonly Buffer[]): Promise<Outcome> {
  const [attacker, victimSide] = createMemoryTransportPair();
  attacker.attach({ onMessage: () => {}, onDrain: () => {}, onClose: () => {} });
  const session = new Session(victimSide, { role: 'responder', keepaliveIntervalMs: 0, maxChannels: 4 });
  let closeError: DevstreamsError | undefined;
  let closeCount = 0;
  session.on('close', (err) => {
    closeCount++;
    closeError = err;
  });
  session.on('open', (req) => {
    // Like a proxy: refuse some, accept and drain the others, answer EOF with EOF.
    if (req.target.port % 3 === 0) return req.refuse('ERR_TARGET_REFUSED', 'no');
    const ch = req.accept();
    ch.on('error', () => {});
    ch.on('end', () => ch.end());
    ch.resume();
  });
  const inject = attacker as unknown as { injectToPeer(m: Buffer): void }; // memory-transport test hook
  for (const chunk of chunks) {
    // The receive path must never throw out to the transport.
    expect(() => inject.injectToPeer(chunk)).not.toThrow();
  }
  // Let queued answers flush and any deferred close run (bounded: a few event-loop turns).
  for (let i = 0; i < 4; i++) await new Promise((r) => setImmediate(r));
  const decoder = (session as unknown as { decoder: FrameDecoder }).decoder;
  const outcome: Outcome = { closed: session.closed, error: closeError, buffered: decoder.buffered, channels: session.channelCount };
  session.close();
  expect(session.closed).toBe(true);
  expect(session.channelCount).toBe(0);
  expect(closeCount).toBe(1);
  attacker.close();
  return outcome;
}

function checkOutcome(o: Outcome): void {
  if (o.error) {
    expect(o.error).toBeInstanceOf(DevstreamsError);
    expect(isCodedRejection(o.error), `${o.error.code}: ${o.error.message}`).toBe(true);
  }
  expect(o.buffered).toBeLessThanOrEqual(FRAME_BOUND);
  expect(o.channels).toBeLessThanOrEqual(4);
}

describe('fuzz: mux frame decoder', () => {
  it(
    'random bytes in random chunks: only coded ERR_PROTOCOL_* errors, bounded buffering',
    () => {
      fc.assert(
        fc.property(
          fc.uint8Array({ maxLength: 2048 }),
          fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 8 }),
          (bytes, cuts) => {
            const decoder = new FrameDecoder(MAX_FRAME_PAYLOAD_LIMIT);
            try {
              for (const chunk of splitAt(Buffer.from(bytes), cuts)) {
                decoder.push(chunk, (_t, _c, p) => expect(p.length).toBeLessThanOrEqual(MAX_FRAME_PAYLOAD_LIMIT));
                expect(decoder.buffered).toBeLessThanOrEqual(FRAME_BOUND);
              }
            } catch (err) {
              expect(err).toBeInstanceOf(DevstreamsError);
              expect((err as DevstreamsError).code).toMatch(/^ERR_PROTOCOL_/);
            }
          },
        ),
        fuzzParams(2000),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    'mutated valid streams: only coded errors, never a payload past the limit',
    () => {
      fc.assert(
        fc.property(inputArb, ({ ops, mutations, cuts }) => {
          const bytes = mutate(encodeScript(ops), mutations);
          const decoder = new FrameDecoder(MAX_FRAME_PAYLOAD_LIMIT);
          try {
            for (const chunk of splitAt(bytes, cuts)) decoder.push(chunk, () => {});
          } catch (err) {
            expect(err).toBeInstanceOf(DevstreamsError);
            expect((err as DevstreamsError).code).toMatch(/^ERR_PROTOCOL_/);
          }
          expect(decoder.buffered).toBeLessThanOrEqual(FRAME_BOUND);
        }),
        fuzzParams(1500),
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});

describe('fuzz: live mux session', () => {
  it(
    'valid and mutated frame sequences end the session with a coded error or leave it working',
    async () => {
      await fc.assert(
        fc.asyncProperty(inputArb, async ({ ops, mutations, cuts }) => {
          checkOutcome(await feedSession(splitAt(mutate(encodeScript(ops), mutations), cuts)));
        }),
        fuzzParams(700),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    'pure garbage after a valid HELLO is rejected with ERR_PROTOCOL_*',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.uint8Array({ minLength: 1, maxLength: 512 }), async (garbage) => {
          checkOutcome(await feedSession([hello(), Buffer.from(garbage)]));
        }),
        fuzzParams(300),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  it('a length field past the end leaves the session waiting with bounded buffering; huge lengths are refused', async () => {
    // Past the end: a 4 KiB control frame announced, 10 bytes sent. The session must not grow.
    const partial = Buffer.alloc(HEADER_SIZE + 10);
    partial[0] = FrameType.OPEN;
    partial.writeUInt32BE(1, 2);
    partial.writeUInt32BE(4096, 6);
    const waiting = await feedSession([hello(), partial]);
    expect(waiting.error).toBeUndefined();
    expect(waiting.buffered).toBeLessThanOrEqual(FRAME_BOUND);
    for (const length of [MAX_FRAME_PAYLOAD_LIMIT + 1, 0x7fffffff, 0xffffffff]) {
      const huge = Buffer.alloc(HEADER_SIZE);
      huge[0] = FrameType.DATA;
      huge.writeUInt32BE(1, 2);
      huge.writeUInt32BE(length, 6);
      const o = await feedSession([hello(), huge]);
      expect(o.error?.code).toBe('ERR_PROTOCOL_FRAME_TOO_LARGE');
    }
  });

  it('regression: frames behind a peer error GOAWAY in the same message do not reach the closed session', async () => {
    // Found by the fuzzer: an OPEN after GOAWAY(code 1) created a channel on the finished
    // session (leaked, never closed), and the transport stayed open.
    const [attacker, victimSide] = createMemoryTransportPair();
    attacker.attach({ onMessage: () => {}, onDrain: () => {}, onClose: () => {} });
    const session = new Session(victimSide, { role: 'responder', keepaliveIntervalMs: 0 });
    let opens = 0;
    session.on('open', (req) => {
      opens++;
      req.accept().on('error', () => {});
    });
    const closed = new Promise<DevstreamsError | undefined>((r) => session.once('close', r));
    (attacker as unknown as { injectToPeer(m: Buffer): void }).injectToPeer(
      Buffer.concat([
        hello(),
        encodeStructured(FrameType.GOAWAY, 0, { code: 1, message: 'bye' }),
        encodeStructured(FrameType.OPEN, 1, { host: 'h', port: 1 }),
      ]),
    );
    expect((await closed)?.code).toBe('ERR_CHANNEL_RESET');
    expect(opens).toBe(0);
    expect(session.channelCount).toBe(0);
    expect(victimSide.closed).toBe(true);
  });

  it('frames out of state are refused with ERR_PROTOCOL_STATE / _CHANNEL / _FLOW_CONTROL', async () => {
    const open = (id: number): Buffer => encodeStructured(FrameType.OPEN, id, { host: 'h', port: 1 });
    const cases: Array<[Buffer[], string]> = [
      [[open(1)], 'ERR_PROTOCOL_STATE'], // before HELLO
      [[hello(), hello()], 'ERR_PROTOCOL_STATE'],
      [[hello(), open(2)], 'ERR_PROTOCOL_CHANNEL'], // wrong parity
      [[hello(), open(3), open(1)], 'ERR_PROTOCOL_CHANNEL'], // going backwards
      [[hello(), open(1), encodeFrame(FrameType.CLOSE, 1), encodeFrame(FrameType.DATA, 1, Buffer.from('x'))], 'ERR_PROTOCOL_STATE'],
      [
        [
          hello(),
          open(1),
          encodeFrame(FrameType.DATA, 1, Buffer.alloc(MAX_FRAME_PAYLOAD_LIMIT)),
          ...Array.from({ length: 4 }, () => encodeFrame(FrameType.DATA, 1, Buffer.alloc(MAX_FRAME_PAYLOAD_LIMIT))),
        ],
        'ERR_PROTOCOL_FLOW_CONTROL',
      ],
      [[hello(), encodeWindow(0, 0x7fffffff)], 'ERR_PROTOCOL_FLOW_CONTROL'],
      [[hello(), encodeFrame(FrameType.WINDOW, 0, Buffer.alloc(3))], 'ERR_PROTOCOL_FRAME'],
      [[hello(), encodeFrame(FrameType.PING, 0, Buffer.alloc(7))], 'ERR_PROTOCOL_FRAME'],
      [[hello(), encodeFrame(FrameType.RESET, 1, Buffer.alloc(1))], 'ERR_PROTOCOL_FRAME'],
      [[hello(), encodeFrame(0x0a, 0)], 'ERR_PROTOCOL_UNKNOWN_TYPE'],
    ];
    for (const [frames, code] of cases) {
      const o = await feedSession([Buffer.concat(frames)]);
      expect(o.error?.code, code).toBe(code);
    }
  });

  it(
    'runs many hostile sessions without heap growth',
    async () => {
      const batch = (n: number, seed: number) => fc.sample(inputArb, { numRuns: n, seed });
      const run = async (inputs: ReturnType<typeof batch>): Promise<void> => {
        for (const { ops, mutations, cuts } of inputs) await feedSession(splitAt(mutate(encodeScript(ops), mutations), cuts));
      };
      await run(batch(150, 1)); // warm-up: JIT, msgpackr caches
      const before = heapAfterGc();
      await run(batch(1000, 2));
      const after = heapAfterGc();
      // Sessions hold at most a frame each and are dropped after every run; leaking one session
      // per run would add megabytes here.
      expect(after - before).toBeLessThan(8 * 1024 * 1024);
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    'a session over TCP survives a raw socket writing mutated, length-prefixed frames',
    async () => {
      const server = net.createServer();
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const port = (server.address() as net.AddressInfo).port;
      try {
        await fc.assert(
          fc.asyncProperty(inputArb, async ({ ops, mutations, cuts }) => {
            const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
            const raw = net.connect(port, '127.0.0.1');
            raw.on('error', () => {});
            raw.resume();
            const session = new Session(new TcpTransport(await accepted), { role: 'responder', keepaliveIntervalMs: 0 });
            session.on('open', (req) =>
              req
                .accept()
                .on('error', () => {})
                .resume(),
            );
            const closed = new Promise<DevstreamsError | undefined>((r) => session.once('close', r));
            const frames = encodeScript(ops);
            const prefix = Buffer.alloc(4);
            prefix.writeUInt32BE(frames.length);
            // Mutations may hit the transport's own length prefix too (a length past the end, huge).
            for (const chunk of splitAt(mutate(Buffer.concat([prefix, frames]), mutations), cuts)) raw.write(chunk);
            raw.end();
            const err = await closed; // the raw side ends: the session must close, coded or clean
            if (err) {
              expect(err).toBeInstanceOf(DevstreamsError);
              expect(isCodedRejection(err) || err.code === 'ERR_SESSION_CLOSED', `${err.code}: ${err.message}`).toBe(true);
            }
            raw.destroy();
          }),
          fuzzParams(60, 0.1),
        );
      } finally {
        await new Promise<void>((r) => server.close(() => r()));
      }
    },
    FUZZ_TIMEOUT_MS,
  );
});
