// The resumable layer bounds what it keeps unacknowledged by the round trip: a bulk transfer on a
// short path must not park megabytes in the queues along it, which every other channel of the
// session waits behind; a long path keeps more, and a resume starts over (see resume-refuse).
// With the delay controller on, the peer's ACKs come back through a link whose delay the test
// sets: the bound shrinks when that delay (a queue) rises and grows back when it falls, and the
// sender never has more than the bound (plus the message that crossed it) unacknowledged.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryTransportPair } from '../src/transport/memory.js';
import { DEFAULT_RESUME_CONFIG, ResumableTransport, type ResumeConfig } from '../src/resume/index.js';
import { ACK_STEPS_IN_FLIGHT, InFlightBound } from '../src/resume/in-flight.js';
import { DelegatingTransport } from './helpers/delegating-transport.js';
import { until } from './helpers/until.js';

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
    await settle(50); // kept: a wake-up that should not happen has no event to wait for
    expect(drains()).toBe(blocked); // nobody is woken while still above the bound
    expect(t.send([Buffer.alloc(1)])).toBe(false);
  });
});

/**
 * The delay controller on, as a service and device would both configure it, with a target of
 * 20 ms so that a loaded test machine's scheduling stalls are not taken for the queue the test
 * makes (200 ms).
 */
const DELAY = {
  targetQueueDelayMs: 20,
  minInFlight: 256 * 1024,
  initialInFlight: 1024 * 1024,
  ackEveryBytes: 128 * 1024,
} satisfies Partial<ResumeConfig>;

describe('resumable layer: the delay controller (targetQueueDelayMs > 0)', () => {
  it('shrinks the bound when the ACK path queues and grows it back when the queue drains; never more than the bound in flight', async () => {
    const [a, b] = createMemoryTransportPair();
    const binding = randomBytes(32);
    const sender = ResumableTransport.initiate({ transport: a, binding }, DELAY);
    const ackPath = new DelayedSend(b);
    const receiver = ResumableTransport.accept({ transport: ackPath, binding }, DELAY);
    cleanups.push(() => {
      sender.close();
      receiver.close();
    });
    let received = 0;
    receiver.attach({
      onMessage: (m) => (received += m.length),
      onMessageParts: (p) => p.forEach((x) => (received += x.length)),
      onDrain() {},
      onClose() {},
    });
    const chunk = Buffer.alloc(64 * 1024);
    let overshoot = 0;
    let running = true;
    const pump = (): void => {
      while (running && sender.send([chunk])) overshoot = Math.max(overshoot, sender.replayBytes - sender.inFlightLimit);
      overshoot = Math.max(overshoot, sender.replayBytes - sender.inFlightLimit - chunk.length - 64);
    };
    sender.attach({ onMessage() {}, onDrain: pump, onClose() {} });
    await settle(5); // handlers are installed a turn after attach
    expect(sender.inFlightLimit).toBe(DELAY.initialInFlight);
    pump();

    /** Waits until `pred` holds, for a bounded time; false if it never did. */
    const eventually = async (pred: () => boolean, ms: number): Promise<boolean> => {
      for (const end = Date.now() + ms; !pred(); ) {
        if (Date.now() > end) return false;
        await settle(10);
      }
      return true;
    };

    // No queue on the path: the bound grows.
    expect(await eventually(() => sender.inFlightLimit > DELAY.initialInFlight, 10_000)).toBe(true);
    const grown = sender.inFlightLimit;

    ackPath.delayMs = 200; // 200 ms of queue on the way back: the bound falls back below its start
    expect(await eventually(() => sender.inFlightLimit <= DELAY.initialInFlight, 20_000)).toBe(true);
    const shrunk = sender.inFlightLimit;
    expect(shrunk).toBeLessThan(grown);

    ackPath.delayMs = 0; // the queue drains: the bound grows again
    expect(await eventually(() => sender.inFlightLimit > shrunk, 20_000)).toBe(true);
    running = false;
    expect(received).toBeGreaterThan(0);
    expect(overshoot).toBeLessThanOrEqual(0);
  }, 60_000);

  it('starts from initialInFlight and never goes below minInFlight, whatever the ACKs say', async () => {
    const [a, b] = createMemoryTransportPair();
    b.attach({ onMessage() {}, onDrain() {}, onClose() {} });
    const t = ResumableTransport.initiate(
      { transport: a, binding: randomBytes(32) },
      { ...DELAY, minInFlight: 512 * 1024, initialInFlight: 64 * 1024 },
    );
    cleanups.push(() => t.close());
    expect(t.inFlightLimit).toBe(512 * 1024); // the start is raised to the floor
    t.setPathRtt(Number.NaN);
    t.setPathRtt(-1);
    t.setPathRtt(0.1);
    expect(t.inFlightLimit).toBe(512 * 1024);
  });
});

describe('resumable layer: the bound follows the peer ACK step (round-trip rule)', () => {
  const rule = {
    replayHighWater: DEFAULT_RESUME_CONFIG.replayHighWater,
    inFlightRate: DEFAULT_RESUME_CONFIG.inFlightRate,
    minInFlight: DEFAULT_RESUME_CONFIG.minInFlight,
    targetQueueDelayMs: 0,
    initialInFlight: DEFAULT_RESUME_CONFIG.initialInFlight,
  };

  it('a current peer (an ACK every 256 KiB) leaves the loopback bound at minInFlight', () => {
    const bound = new InFlightBound(rule);
    bound.onPathRtt(0.3);
    for (let i = 0; i < 20; i++) bound.onAck(256 * 1024, 1, 1024 * 1024);
    expect(bound.limit).toBe(DEFAULT_RESUME_CONFIG.minInFlight);
  });

  it('an older peer (an ACK every 32 messages of 64 KiB) gets two of its steps, so no step waits for its ACK timer', () => {
    const bound = new InFlightBound(rule);
    bound.onPathRtt(0.3);
    bound.onAck(32 * 64 * 1024, 1, 4 * 1024 * 1024);
    expect(bound.limit).toBe(ACK_STEPS_IN_FLIGHT * 32 * 64 * 1024);
    // Capped by replayHighWater, whatever a peer claims to acknowledge at once.
    bound.onAck(64 * 1024 * 1024, 1, 64 * 1024 * 1024);
    expect(bound.limit).toBe(DEFAULT_RESUME_CONFIG.replayHighWater);
  });

  it('the default receiver acknowledges by bytes, and the sender bound stays at the floor through a transfer', async () => {
    const [a, b] = createMemoryTransportPair();
    const sender = ResumableTransport.initiate({ transport: a, binding: randomBytes(32) });
    const receiver = ResumableTransport.accept({ transport: b, binding: randomBytes(32) });
    cleanups.push(
      () => sender.close(),
      () => receiver.close(),
    );
    let got = 0;
    receiver.attach({ onMessage: (m) => (got += m.length), onDrain() {}, onClose() {} });
    let drained = 0;
    sender.attach({ onMessage() {}, onDrain: () => drained++, onClose() {} });
    sender.setPathRtt(0.3);
    const chunk = Buffer.alloc(64 * 1024, 7);
    for (let i = 0; i < 256; i++) {
      if (!sender.send([chunk])) {
        const before = drained;
        await until(() => drained > before, 10_000, 'a drain');
      }
      expect(sender.replayBytes).toBeLessThanOrEqual(DEFAULT_RESUME_CONFIG.minInFlight + chunk.length + 1);
    }
    await until(() => got === 256 * chunk.length, 10_000, 'everything delivered');
    expect(sender.inFlightLimit).toBe(DEFAULT_RESUME_CONFIG.minInFlight);
  });
});
