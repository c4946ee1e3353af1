// The resumable layer bounds what it keeps unacknowledged by the path's round trip: a bulk
// transfer on a short path must not park megabytes in the queues along it, which every other
// channel of the session waits behind; a long path keeps the full replay high water.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryTransportPair } from '../src/transport/memory.js';
import { DEFAULT_RESUME_CONFIG, ResumableTransport } from '../src/resume/index.js';
import { until } from './crypto-helpers.js';

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

/**
 * Sends 64 KiB messages, waiting out the link's own backpressure, until `send` says stop and no
 * drain follows within 300 ms (the in-flight bound); bounded in count. Returns the bytes sent.
 */
async function fill(t: ResumableTransport, drains: () => number): Promise<number> {
  const chunk = Buffer.alloc(64 * 1024);
  let sent = 0;
  for (let i = 0; i < 1000; i++) {
    const before = drains();
    sent += chunk.length;
    if (t.send([chunk])) continue;
    const end = Date.now() + 300;
    while (drains() === before && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    if (drains() === before) break;
  }
  return sent;
}

describe('resumable layer: bytes in flight', () => {
  it('holds up to replayHighWater before the round trip is known', async () => {
    const { t, drains } = await unacknowledged();
    expect(t.inFlightLimit).toBe(DEFAULT_RESUME_CONFIG.replayHighWater);
    const sent = await fill(t, drains);
    expect(sent).toBeGreaterThanOrEqual(DEFAULT_RESUME_CONFIG.replayHighWater);
    expect(t.replayBytes).toBeGreaterThan(DEFAULT_RESUME_CONFIG.replayHighWater);
    expect(sent).toBeLessThanOrEqual(DEFAULT_RESUME_CONFIG.replayHighWater + 128 * 1024);
  });

  it('a short round trip bounds it to minInFlight, and a longer one lifts the bound and drains', async () => {
    const { t, drains } = await unacknowledged();
    t.setPathRtt(0.4); // loopback: 500 MB/s x 0.4 ms = 200 KB, below the floor
    expect(t.inFlightLimit).toBe(DEFAULT_RESUME_CONFIG.minInFlight);
    const sent = await fill(t, drains);
    expect(sent).toBeGreaterThanOrEqual(DEFAULT_RESUME_CONFIG.minInFlight);
    expect(sent).toBeLessThanOrEqual(DEFAULT_RESUME_CONFIG.minInFlight + 128 * 1024);
    expect(t.replayBytes).toBeGreaterThan(DEFAULT_RESUME_CONFIG.minInFlight);
    // A 20 ms path: 10 MB may be in flight, so the blocked sender may go on.
    const blockedDrains = drains();
    t.setPathRtt(20);
    expect(t.inFlightLimit).toBe(10_000_000);
    await until(() => drains() === blockedDrains + 1);
    // A 100 ms path is capped by replayHighWater.
    t.setPathRtt(100);
    expect(t.inFlightLimit).toBe(DEFAULT_RESUME_CONFIG.replayHighWater);
  });
});
