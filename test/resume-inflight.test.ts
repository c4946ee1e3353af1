// The resumable layer bounds what it keeps unacknowledged with a delay-based controller: a bulk
// transfer must not park megabytes in the queues along a short path, which every other channel
// of the session waits behind. Here the peer's ACKs come back through a link whose delay the test
// sets: the bound shrinks when that delay (a queue) rises and grows back when it falls, and the
// sender never has more than the bound (plus the message that crossed it) unacknowledged.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryTransportPair } from '../src/transport/memory.js';
import { DEFAULT_RESUME_CONFIG, ResumableTransport } from '../src/resume/index.js';
import { DelegatingTransport } from './helpers/delegating-transport.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** Holds every message it sends for `delayMs` (in order): an emulated queue on the ACK path. */
class DelayedSend extends DelegatingTransport {
  delayMs = 0;
  private last = 0;
  override send(parts: readonly Buffer[]): boolean {
    if (this.delayMs === 0 && this.last <= performance.now()) return this.inner.send(parts);
    const copy = parts.map((p) => Buffer.from(p));
    const at = Math.max(performance.now() + this.delayMs, this.last);
    this.last = at;
    setTimeout(() => this.inner.send(copy), at - performance.now());
    return true;
  }
}

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('resumable layer: bytes in flight', () => {
  it('shrinks the bound when the ACK path queues and grows it back when the queue drains; never more than the bound in flight', async () => {
    const [a, b] = createMemoryTransportPair();
    const binding = randomBytes(32);
    const sender = ResumableTransport.initiate({ transport: a, binding });
    const ackPath = new DelayedSend(b);
    const receiver = ResumableTransport.accept({ transport: ackPath, binding });
    cleanups.push(() => {
      sender.close();
      receiver.close();
    });
    let received = 0;
    receiver.attach({ onMessage: (m) => (received += m.length), onMessageParts: (p) => p.forEach((x) => (received += x.length)), onDrain() {}, onClose() {} });
    const chunk = Buffer.alloc(64 * 1024);
    let overshoot = 0;
    let running = true;
    const pump = (): void => {
      while (running && sender.send([chunk])) overshoot = Math.max(overshoot, sender.replayBytes - sender.inFlightLimit);
      overshoot = Math.max(overshoot, sender.replayBytes - sender.inFlightLimit - chunk.length - 64);
    };
    sender.attach({ onMessage() {}, onDrain: pump, onClose() {} });
    await settle(5); // handlers are installed a turn after attach
    expect(sender.inFlightLimit).toBe(DEFAULT_RESUME_CONFIG.initialInFlight);
    pump();

    await settle(400); // no queue on the path: the bound grows
    const grown = sender.inFlightLimit;
    expect(grown).toBeGreaterThan(DEFAULT_RESUME_CONFIG.initialInFlight);

    ackPath.delayMs = 40; // 40 ms of queue on the way back
    await settle(1500);
    const shrunk = sender.inFlightLimit;
    expect(shrunk).toBeLessThan(grown);
    expect(shrunk).toBeLessThanOrEqual(DEFAULT_RESUME_CONFIG.initialInFlight);

    ackPath.delayMs = 0; // the queue drains
    await settle(800);
    expect(sender.inFlightLimit).toBeGreaterThan(shrunk);
    running = false;
    expect(received).toBeGreaterThan(0);
    expect(overshoot).toBeLessThanOrEqual(0);
  });

  it('starts from initialInFlight and never goes below minInFlight, whatever the ACKs say', async () => {
    const [a, b] = createMemoryTransportPair();
    b.attach({ onMessage() {}, onDrain() {}, onClose() {} });
    const t = ResumableTransport.initiate({ transport: a, binding: randomBytes(32) }, { minInFlight: 512 * 1024, initialInFlight: 64 * 1024 });
    cleanups.push(() => t.close());
    expect(t.inFlightLimit).toBe(512 * 1024); // the start is raised to the floor
    t.setPathRtt(Number.NaN);
    t.setPathRtt(-1);
    t.setPathRtt(0.1);
    expect(t.inFlightLimit).toBe(512 * 1024);
  });
});
