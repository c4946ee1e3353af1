// The resumable layer bounds what it keeps unacknowledged by the round trip: a bulk transfer on a
// short path must not park megabytes in the queues along it, which every other channel of the
// session waits behind; a long path keeps more, and a resume starts over (see resume-refuse).
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryTransportPair } from '../src/transport/memory.js';
import { DEFAULT_RESUME_CONFIG, ResumableTransport } from '../src/resume/index.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A resumable initiator whose peer reads everything and never acknowledges. */
async function unacknowledged(): Promise<{ t: ResumableTransport; drains: () => number }> {
  const [a, b] = createMemoryTransportPair();
  b.attach({ onMessage() {}, onDrain() {}, onClose() {} });
  const t = ResumableTransport.initiate({ transport: a, binding: randomBytes(32) });
  let drains = 0;
  t.attach({ onMessage() {}, onDrain: () => drains++, onClose() {} });
  await new Promise((r) => setImmediate(r)); // handlers are installed a turn after attach
  cleanups.push(() => t.close());
  return { t, drains: () => drains };
}

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Sends 64 KiB messages until `send` refuses with more than the bound unacknowledged, waiting
 * out the link's own backpressure (a drain) in between; bounded in count. Returns bytes sent.
 */
async function fillToBound(t: ResumableTransport, drains: () => number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024);
  let sent = 0;
  for (let i = 0; i < 1000; i++) {
    const before = drains();
    sent += chunk.length;
    if (t.send([chunk])) continue;
    if (t.replayBytes > t.inFlightLimit) return sent;
    const end = Date.now() + 10_000;
    while (drains() === before && Date.now() < end) await settle(5);
    if (drains() === before) throw new Error('the link never drained');
  }
  throw new Error('never reached the bound');
}

describe('resumable layer: bytes in flight', () => {
  it('holds up to replayHighWater before the round trip is known', async () => {
    const { t, drains } = await unacknowledged();
    expect(t.inFlightLimit).toBe(DEFAULT_RESUME_CONFIG.replayHighWater);
    const sent = await fillToBound(t, drains);
    expect(sent).toBeGreaterThanOrEqual(DEFAULT_RESUME_CONFIG.replayHighWater);
    expect(sent).toBeLessThanOrEqual(DEFAULT_RESUME_CONFIG.replayHighWater + 128 * 1024);
  });

  it('sizes the bound from the lowest round trip: rate x RTT, floored at minInFlight; higher samples and junk are ignored', async () => {
    const { t, drains } = await unacknowledged();
    t.setPathRtt(20); // 500 MB/s x 20 ms
    expect(t.inFlightLimit).toBe(10_000_000);
    const sent = await fillToBound(t, drains);
    expect(sent).toBeGreaterThanOrEqual(10_000_000);
    expect(sent).toBeLessThanOrEqual(10_000_000 + 128 * 1024);
    const blocked = drains();
    // A higher sample was taken behind the queue this bound allows: it does not raise the bound.
    t.setPathRtt(100);
    t.setPathRtt(Number.NaN);
    t.setPathRtt(-1);
    expect(t.inFlightLimit).toBe(10_000_000);
    // A loopback round trip: 200 KB, below the floor.
    t.setPathRtt(0.4);
    expect(t.inFlightLimit).toBe(DEFAULT_RESUME_CONFIG.minInFlight);
    await settle(50);
    expect(drains()).toBe(blocked); // nobody is woken while still above the bound
    expect(t.send([Buffer.alloc(1)])).toBe(false);
  });
});
