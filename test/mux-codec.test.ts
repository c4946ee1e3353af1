import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FrameDecoder } from '../src/mux/decoder.js';
import { OPEN_CACHE_ENTRIES, decodeOpen, encodeFrame, encodeOpen, encodeReset, decodeReset, encodeStructured } from '../src/mux/frame.js';

interface Frame {
  type: number;
  channel: number;
  payload: Buffer;
}
import { FrameType, HEADER_SIZE, MAX_FRAME_PAYLOAD_LIMIT } from '../src/mux/constants.js';
import { DevstreamsError } from '../src/errors.js';
import { Session } from '../src/mux/index.js';
import { createMemoryTransportPair } from '../src/transport/index.js';
import { splitBytesAt } from './helpers/chunks.js';

/** The obviously-correct reference: parse a whole byte string frame by frame. */
function referenceDecode(bytes: Buffer): Frame[] {
  const frames: Frame[] = [];
  let at = 0;
  while (at < bytes.length) {
    const length = bytes.readUInt32BE(at + 6);
    frames.push({
      type: bytes[at]!,
      channel: bytes.readUInt32BE(at + 2),
      payload: bytes.subarray(at + HEADER_SIZE, at + HEADER_SIZE + length),
    });
    at += HEADER_SIZE + length;
  }
  return frames;
}

const frameArb = fc.record({
  type: fc.integer({ min: 0, max: 9 }),
  channel: fc.integer({ min: 0, max: 0xffffffff }),
  payload: fc.uint8Array({ maxLength: 3000 }).map((a) => Buffer.from(a)),
});

function mergeData(
  frames: Array<{ type: number; channel: number; payload: string }>,
): Array<{ type: number; channel: number; payload: string }> {
  const merged: Array<{ type: number; channel: number; payload: string }> = [];
  for (const f of frames) {
    const last = merged[merged.length - 1];
    if (last && f.type === FrameType.DATA && last.type === FrameType.DATA && last.channel === f.channel) last.payload += f.payload;
    else merged.push({ ...f });
  }
  return merged;
}

function split(bytes: Buffer, cuts: number[]): Buffer[] {
  return splitBytesAt(
    bytes,
    cuts.map((c) => c % (bytes.length + 1)),
  );
}

describe('frame codec', () => {
  it('decodes random frames split at random chunk boundaries exactly as the reference does', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 40 }), (frames, cuts) => {
        const bytes = Buffer.concat(frames.map((f) => encodeFrame(f.type, f.channel, f.payload)));
        const decoder = new FrameDecoder(MAX_FRAME_PAYLOAD_LIMIT);
        const out: Array<{ type: number; channel: number; payload: string }> = [];
        for (const chunk of split(bytes, cuts))
          decoder.push(chunk, (type, channel, payload) => out.push({ type, channel, payload: payload.toString('hex') }));
        const expected = referenceDecode(bytes).map((f) => ({ type: f.type, channel: f.channel, payload: f.payload.toString('hex') }));
        // DATA may arrive in pieces: compare with consecutive DATA on one channel merged, on both sides.
        expect(mergeData(out)).toEqual(mergeData(expected));
        expect(decoder.buffered).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('rejects an oversized frame from its header, before buffering the payload', () => {
    const decoder = new FrameDecoder(1024);
    const header = Buffer.alloc(HEADER_SIZE);
    header[0] = FrameType.DATA;
    header.writeUInt32BE(1, 2);
    header.writeUInt32BE(1025, 6);
    expect(() => decoder.push(header, () => {})).toThrow(expect.objectContaining({ code: 'ERR_PROTOCOL_FRAME_TOO_LARGE' }));
  });

  it('hands a DATA payload that spans chunks out as views, without copying', () => {
    const payload = Buffer.alloc(60_000, 9);
    const bytes = encodeFrame(FrameType.DATA, 7, payload);
    const first = Buffer.from(bytes.subarray(0, 30_000));
    const second = Buffer.from(bytes.subarray(30_000));
    const pieces: Buffer[] = [];
    const decoder = new FrameDecoder(MAX_FRAME_PAYLOAD_LIMIT);
    decoder.push(first, (_t, _c, p) => pieces.push(p));
    decoder.push(second, (_t, _c, p) => pieces.push(p));
    expect(Buffer.concat(pieces).equals(payload)).toBe(true);
    expect(pieces[0]!.buffer).toBe(first.buffer);
    expect(pieces[1]!.buffer).toBe(second.buffer);
  });

  it('rejects an unknown frame type', () => {
    const decoder = new FrameDecoder(1024);
    expect(() => decoder.push(encodeFrame(0x42, 0), () => {})).toThrow(expect.objectContaining({ code: 'ERR_PROTOCOL_UNKNOWN_TYPE' }));
  });

  it('round-trips reset codes and reasons, and validates OPEN payloads', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.string({ maxLength: 200 }), (code, reason) => {
        const frame = encodeReset(5, code, reason);
        const decoded = decodeReset(frame.subarray(HEADER_SIZE));
        expect(decoded.wireCode).toBe(code);
        expect(decoded.reason).toBe(reason);
      }),
    );
    const ok = encodeStructured(FrameType.OPEN, 1, { host: 'h', port: 22, service: 'ssh' }).subarray(HEADER_SIZE);
    expect(decodeOpen(ok)).toEqual({ host: 'h', port: 22, service: 'ssh' });
    for (const bad of [{ host: '', port: 1 }, { host: 'h', port: 70000 }, { host: 5, port: 1 }, [1, 2]]) {
      expect(() => decodeOpen(encodeStructured(FrameType.OPEN, 1, bad).subarray(HEADER_SIZE))).toThrow(DevstreamsError);
    }
  });
});

describe('OPEN payloads seen before (packed and checked once per target)', () => {
  const structured = (id: number, meta: object): Buffer => encodeStructured(FrameType.OPEN, id, meta);

  it('are the bytes msgpack gives, for every target, across more targets than the cache holds', () => {
    const targets: Array<{ host: string; port: number; service?: string }> = [];
    for (let i = 0; i < OPEN_CACHE_ENTRIES * 2 + 3; i++) targets.push({ host: `10.0.${i >> 8}.${i & 255}`, port: 1000 + i });
    // Hosts and services that a naive key would confuse: "a b" with no service and "a" with service "b".
    targets.push(
      { host: 'a b', port: 22 },
      { host: 'a', port: 22, service: 'b' },
      { host: 'a', port: 22, service: '' },
      { host: 'a', port: 22 },
    );
    for (let round = 0; round < 2; round++)
      for (const [i, t] of targets.entries()) {
        const meta: Record<string, unknown> = { host: t.host, port: t.port };
        if (t.service !== undefined) meta.service = t.service;
        expect(encodeOpen(2 * i + 1, t).equals(structured(2 * i + 1, meta))).toBe(true);
        expect(decodeOpen(encodeOpen(1, t).subarray(HEADER_SIZE))).toEqual(t);
      }
  });

  it('decode to a new object each time, and a bad payload is refused every time', () => {
    const payload = encodeOpen(1, { host: 'h', port: 22 }).subarray(HEADER_SIZE);
    const first = decodeOpen(payload);
    first.host = 'changed by its user';
    expect(decodeOpen(payload)).toEqual({ host: 'h', port: 22 });
    const bad = structured(1, { host: 'h', port: 70000 }).subarray(HEADER_SIZE);
    for (let i = 0; i < 3; i++) expect(() => decodeOpen(bad)).toThrow(DevstreamsError);
  });
});

describe('malformed input ends only that session', () => {
  const cases: Array<[string, () => Buffer, string]> = [
    ['garbage bytes', () => Buffer.from('GET / HTTP/1.1\r\n\r\n'), 'ERR_PROTOCOL'],
    ['a frame before HELLO', () => encodeFrame(FrameType.DATA, 1, Buffer.from('x')), 'ERR_PROTOCOL_STATE'],
    ['an oversized frame header', () => Buffer.from([3, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff]), 'ERR_PROTOCOL_FRAME_TOO_LARGE'],
    [
      'a HELLO of another version',
      () => encodeStructured(FrameType.HELLO, 0, { version: 99, initialWindow: 262144, sessionWindow: 1 << 20, maxFramePayload: 65536 }),
      'ERR_PROTOCOL_VERSION',
    ],
    ['a HELLO that is not msgpack', () => encodeFrame(FrameType.HELLO, 0, Buffer.from([0xc1, 0xc1])), 'ERR_PROTOCOL_FRAME'],
  ];
  it.each(cases)('%s', async (_name, make, codePrefix) => {
    const [a, b] = createMemoryTransportPair();
    const victim = new Session(a, { role: 'initiator' });
    // The attacker side is a raw transport: it writes bytes no session would.
    b.attach({ onMessage: () => {}, onDrain: () => {}, onClose: () => {} });
    const closed = new Promise<DevstreamsError | undefined>((resolve) => victim.once('close', resolve));
    b.send([make()]);
    const error = await closed;
    expect(error?.code.startsWith(codePrefix)).toBe(true);
    expect(victim.closed).toBe(true);
  });

  it('treats data beyond the granted window as a flow-control violation', async () => {
    const [a, b] = createMemoryTransportPair();
    const victim = new Session(a, { role: 'responder' });
    victim.on('open', (r) => r.accept().on('error', () => {}));
    b.attach({ onMessage: () => {}, onDrain: () => {}, onClose: () => {} });
    const closed = new Promise<DevstreamsError | undefined>((resolve) => victim.once('close', resolve));
    b.send([encodeStructured(FrameType.HELLO, 0, { version: 1, initialWindow: 262144, sessionWindow: 1 << 20, maxFramePayload: 65536 })]);
    b.send([encodeStructured(FrameType.OPEN, 1, { host: 'h', port: 1 })]);
    const chunk = Buffer.alloc(60_000);
    for (let i = 0; i < 5; i++) b.send([encodeFrame(FrameType.DATA, 1, chunk)]); // 300,000 > 262,144
    expect((await closed)?.code).toBe('ERR_PROTOCOL_FLOW_CONTROL');
  });

  it('rejects a channel id of the wrong parity', async () => {
    const [a, b] = createMemoryTransportPair();
    const victim = new Session(a, { role: 'responder' });
    b.attach({ onMessage: () => {}, onDrain: () => {}, onClose: () => {} });
    const closed = new Promise<DevstreamsError | undefined>((resolve) => victim.once('close', resolve));
    b.send([encodeStructured(FrameType.HELLO, 0, { version: 1, initialWindow: 262144, sessionWindow: 1 << 20, maxFramePayload: 65536 })]);
    b.send([encodeStructured(FrameType.OPEN, 2, { host: 'h', port: 1 })]);
    expect((await closed)?.code).toBe('ERR_PROTOCOL_CHANNEL');
  });

  it('survives random garbage without throwing out of the process', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.uint8Array({ minLength: 1, maxLength: 200 }), { minLength: 1, maxLength: 5 }), async (messages) => {
        const [a, b] = createMemoryTransportPair();
        const victim = new Session(a, { role: 'responder', keepaliveIntervalMs: 0 });
        victim.on('open', (r) => r.accept().on('error', () => {}));
        b.attach({ onMessage: () => {}, onDrain: () => {}, onClose: () => {} });
        b.send([
          encodeStructured(FrameType.HELLO, 0, { version: 1, initialWindow: 262144, sessionWindow: 1 << 20, maxFramePayload: 65536 }),
        ]);
        for (const m of messages) b.send([Buffer.from(m)]);
        await new Promise((r) => setImmediate(r));
        await new Promise((r) => setImmediate(r));
        victim.close();
      }),
      { numRuns: 200 },
    );
  });
});

describe('config', () => {
  it('rejects bad limits at construction with ERR_CONFIG naming the field', () => {
    const [a] = createMemoryTransportPair();
    expect(() => new Session(a, { role: 'initiator', maxFramePayload: 1 << 20 })).toThrow(/maxFramePayload/);
    expect(() => new Session(a, { role: 'initiator', maxWindow: 1000 })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG' }));
  });
});
