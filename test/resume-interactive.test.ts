// The in-flight bound tightens only while latency-sensitive traffic passes. Bulk alone keeps the
// round-trip rule (and its throughput); once the mux says a light channel is talking, the delay
// controller's bound counts too, for interactiveHoldMs after the last hint, and the receiver
// acknowledges more often (its ACKs are the sender's delay samples). The rule itself is checked
// on InFlightBound with an explicit clock; the whole layer on a memory transport whose ACK path
// the test delays (an emulated queue), with the hint given by a real mux session's light writes.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Session, type Channel } from '../src/mux/index.js';
import { DEFAULT_RESUME_CONFIG, ResumableTransport, type ResumeConfig } from '../src/resume/index.js';
import { InFlightBound } from '../src/resume/in-flight.js';
import { MsgType } from '../src/resume/wire.js';
import { createMemoryTransportPair } from '../src/transport/memory.js';
import type { Transport } from '../src/transport/transport.js';
import { DelegatingTransport } from './helpers/delegating-transport.js';
import { until } from './helpers/until.js';

const KiB = 1024;
const MiB = 1024 * KiB;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The defaults of the bound, with a target loose enough for a loaded test machine (20 ms). */
const RULE = {
  replayHighWater: DEFAULT_RESUME_CONFIG.replayHighWater,
  inFlightRate: DEFAULT_RESUME_CONFIG.inFlightRate,
  minInFlight: DEFAULT_RESUME_CONFIG.minInFlight,
  targetQueueDelayMs: 0,
  initialInFlight: DEFAULT_RESUME_CONFIG.initialInFlight,
  interactiveQueueDelayMs: 20,
  interactiveHoldMs: 1_000,
  interactiveMinInFlight: 256 * KiB,
};

describe('InFlightBound: the interactive rule (explicit clock)', () => {
  it('bulk alone keeps the round-trip rule however much queue the ACKs show', () => {
    const bound = new InFlightBound(RULE);
    bound.onPathRtt(0.3);
    for (let i = 0; i < 50; i++) bound.onAck(128 * KiB, 300, 2 * MiB); // 300 ms of queue
    expect(bound.limitAt(0)).toBe(RULE.minInFlight);
    expect(bound.interactiveAt(0)).toBe(false);
  });

  it('engages on a hint, shrinks with queueing delay, grows back when it falls, and lets go after interactiveHoldMs', () => {
    const bound = new InFlightBound(RULE);
    bound.onPathRtt(0.3);
    bound.noteInteractive(100);
    expect(bound.interactiveAt(100)).toBe(true);
    // No queue yet: the controller grows from its floor, and the limit is the lower of the two.
    for (let i = 0; i < 8; i++) bound.onAck(128 * KiB, 0.5, bound.limitAt(100));
    const noQueue = bound.limitAt(100);
    expect(noQueue).toBeGreaterThan(RULE.interactiveMinInFlight);
    expect(noQueue).toBeLessThanOrEqual(RULE.minInFlight);
    // A queue well above the target: down to the controller's floor (three ACK steps here).
    for (let i = 0; i < 50; i++) bound.onAck(128 * KiB, 200, bound.limitAt(100));
    const queued = bound.limitAt(100);
    expect(queued).toBe(3 * 128 * KiB);
    // The queue drains: it grows back.
    for (let i = 0; i < 8; i++) bound.onAck(128 * KiB, 0.5, bound.limitAt(100));
    expect(bound.limitAt(100)).toBeGreaterThan(queued);
    // Still within the hold just before it ends, the round-trip rule once it has.
    expect(bound.limitAt(100 + RULE.interactiveHoldMs - 1)).toBeLessThan(RULE.minInFlight);
    expect(bound.limitAt(100 + RULE.interactiveHoldMs)).toBe(RULE.minInFlight);
    expect(bound.interactiveAt(100 + RULE.interactiveHoldMs)).toBe(false);
  });

  it('fed while not counting, it is at its floor already when the first keystroke comes beside bulk', () => {
    const bound = new InFlightBound(RULE);
    bound.onPathRtt(0.3);
    for (let i = 0; i < 50; i++) bound.onAck(128 * KiB, 200, 2 * MiB); // bulk, queueing
    bound.noteInteractive(5);
    expect(bound.limitAt(5)).toBe(3 * 128 * KiB);
  });

  it('never counts with interactiveQueueDelayMs 0, and the explicit controller (targetQueueDelayMs) is unchanged by hints', () => {
    const off = new InFlightBound({ ...RULE, interactiveQueueDelayMs: 0 });
    off.onPathRtt(0.3);
    off.noteInteractive(0);
    for (let i = 0; i < 50; i++) off.onAck(128 * KiB, 200, 2 * MiB);
    expect(off.interactiveAt(1)).toBe(false);
    expect(off.limitAt(1)).toBe(RULE.minInFlight);
    const always = new InFlightBound({ ...RULE, targetQueueDelayMs: 20, minInFlight: 256 * KiB });
    for (let i = 0; i < 50; i++) always.onAck(128 * KiB, 200, 2 * MiB);
    const limit = always.limitAt(0);
    always.noteInteractive(0);
    expect(always.limitAt(1)).toBe(limit);
    expect(always.interactiveAt(1)).toBe(false);
  });

  it('an older peer that acknowledges every 2 MiB: never below the round-trip rule gives it', () => {
    const bound = new InFlightBound(RULE);
    bound.onPathRtt(0.3);
    bound.noteInteractive(0);
    for (let i = 0; i < 20; i++) bound.onAck(2 * MiB, 200, 4 * MiB);
    // Three of its steps for the controller, two for the rule: the lower, which still covers two steps.
    expect(bound.limitAt(1)).toBe(4 * MiB);
  });
});

/** Holds every message it sends for `delayMs`, strictly in order: an emulated queue on the ACK path. */
class DelayedSend extends DelegatingTransport {
  delayMs = 0;
  private readonly queue: { at: number; parts: Buffer[] }[] = [];
  private timer: NodeJS.Timeout | undefined;
  override send(parts: readonly Buffer[]): boolean {
    if (this.delayMs === 0 && this.queue.length === 0) return this.inner.send(parts);
    this.queue.push({ at: performance.now() + this.delayMs, parts: parts.map((p) => Buffer.from(p)) });
    this.arm();
    return true;
  }
  override close(error?: Error): void {
    clearTimeout(this.timer);
    super.close(error);
  }
  private arm(): void {
    if (this.timer !== undefined || this.queue.length === 0) return;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        const now = performance.now();
        while (this.queue.length > 0 && this.queue[0]!.at <= now + 0.5) this.inner.send(this.queue.shift()!.parts);
        this.arm();
      },
      Math.max(0, this.queue[0]!.at - performance.now()),
    );
  }
}

/** Counts the ACKs a transport sends. */
class AckCounter extends DelegatingTransport {
  acks = 0;
  override send(parts: readonly Buffer[]): boolean {
    if (parts[0]?.[0] === MsgType.ACK) this.acks++;
    return this.inner.send(parts);
  }
}

/** Settings with a 20 ms target: a loaded machine's stalls are not the queue the test makes. */
const CONFIG: Partial<ResumeConfig> = { interactiveQueueDelayMs: 20 };

/** Waits until `pred` holds, for a bounded time; false if it never did. */
async function eventually(pred: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; !pred(); ) {
    if (Date.now() > end) return false;
    await settle(10);
  }
  return true;
}

describe('resumable layer: interactive hints from the mux', () => {
  it('a light channel beside bulk makes the bound follow the ACK path delay; bulk alone does not', async () => {
    const [a, b] = createMemoryTransportPair();
    const binding = randomBytes(32);
    const sender = ResumableTransport.initiate({ transport: a, binding }, CONFIG);
    const ackPath = new DelayedSend(b);
    const receiver = ResumableTransport.accept({ transport: ackPath, binding }, CONFIG);
    const channels: Channel[] = [];
    const served = new Session(receiver, { role: 'responder', keepaliveIntervalMs: 0, onOpen: (r) => channels.push(r.accept()) });
    const client = new Session(sender, { role: 'initiator', keepaliveIntervalMs: 0 });
    cleanups.push(() => {
      client.close();
      served.close();
    });
    sender.setPathRtt(0.3);
    const bulk = client.openChannel({ host: 'bulk', port: 1 });
    const key = client.openChannel({ host: 'key', port: 2 });
    await until(() => channels.length === 2, 10_000, 'both channels accepted');
    for (const c of [...channels, bulk, key]) c.on('error', () => {}); // the test's end closes them
    for (const c of channels) c.resume(); // the far end reads everything
    let running = true;
    const chunk = Buffer.alloc(64 * KiB, 0x62);
    const pump = (): void => {
      while (running && bulk.write(chunk)) {}
    };
    bulk.on('drain', pump);
    cleanups.push(() => {
      running = false;
    });
    pump();

    // Bulk alone, 200 ms of queue on the ACK path: the round-trip rule's bound stays.
    ackPath.delayMs = 200;
    await settle(600);
    expect(sender.inFlightLimit).toBe(DEFAULT_RESUME_CONFIG.minInFlight);

    // A keystroke every 20 ms beside it: the bound falls below the rule's.
    const typing = setInterval(() => key.write(Buffer.from('k')), 20);
    cleanups.push(() => clearInterval(typing));
    expect(await eventually(() => sender.inFlightLimit < DEFAULT_RESUME_CONFIG.minInFlight, 20_000)).toBe(true);
    const shrunk = sender.inFlightLimit;

    // The queue drains: it grows back.
    ackPath.delayMs = 0;
    expect(await eventually(() => sender.inFlightLimit > shrunk, 20_000)).toBe(true);

    // Typing stops: after interactiveHoldMs the round-trip rule is back.
    clearInterval(typing);
    expect(await eventually(() => sender.inFlightLimit === DEFAULT_RESUME_CONFIG.minInFlight, 20_000)).toBe(true);
    running = false;
  }, 60_000);

  it('the receiver acknowledges every interactiveAckEveryBytes while a light channel talks, every ackEveryBytes otherwise', async () => {
    /** Sends `mib` MiB of DATA to a receiver whose hint is given (or not); returns the ACKs it sent. */
    const acksFor = async (hinted: boolean, mib: number): Promise<number> => {
      const [a, b] = createMemoryTransportPair();
      const binding = randomBytes(32);
      const sender = ResumableTransport.initiate({ transport: a, binding });
      const counter = new AckCounter(b);
      // No ACK timer: only the byte count decides, whatever the machine's pace.
      const receiver = ResumableTransport.accept({ transport: counter as Transport, binding }, { ackDelayMs: 60_000 });
      cleanups.push(
        () => sender.close(),
        () => receiver.close(),
      );
      let got = 0;
      receiver.attach({ onMessage: (m) => (got += m.length), onDrain() {}, onClose() {} });
      sender.attach({ onMessage() {}, onDrain() {}, onClose() {} });
      await settle(5);
      const chunk = Buffer.alloc(64 * KiB);
      for (let i = 0; i < mib * 16; i++) {
        sender.send([chunk]);
        await until(() => got >= (i + 1) * chunk.length, 10_000, 'delivered');
        if (hinted) receiver.noteLatencySensitive(); // beside a transfer only once a record is unacknowledged
      }
      return counter.acks;
    };
    const plain = await acksFor(false, 4);
    const hinted = await acksFor(true, 4);
    expect(plain).toBe((4 * MiB) / DEFAULT_RESUME_CONFIG.ackEveryBytes);
    expect(hinted).toBe((4 * MiB) / DEFAULT_RESUME_CONFIG.interactiveAckEveryBytes);
  });
});

describe('resumable layer: a hint counts only beside a transfer', () => {
  it('a small exchange before the transfer (iperf3 control, a request) leaves the round-trip rule; the same hint beside it does not', async () => {
    const [a, b] = createMemoryTransportPair();
    b.attach({ onMessage() {}, onDrain() {}, onClose() {} }); // reads everything, never acknowledges
    const t = ResumableTransport.initiate({ transport: a, binding: randomBytes(32) }, CONFIG);
    cleanups.push(() => t.close());
    t.attach({ onMessage() {}, onDrain() {}, onClose() {} });
    await settle(5);
    t.setPathRtt(0.3);
    t.send([Buffer.from('params')]);
    t.noteLatencySensitive(); // 7 bytes in flight: not beside a transfer
    for (let i = 0; i < 4; i++) t.send([Buffer.alloc(64 * KiB)]);
    expect(t.inFlightLimit).toBe(DEFAULT_RESUME_CONFIG.minInFlight);
    t.noteLatencySensitive(); // 256 KiB in flight: beside one
    expect(t.inFlightLimit).toBe(DEFAULT_RESUME_CONFIG.interactiveMinInFlight);
  });
});

describe('mux: the latency-sensitive hint', () => {
  it('a channel light write gives the hint from its second on, a bulk write never', async () => {
    const [a, b] = createMemoryTransportPair();
    let hints = 0;
    class Hinted extends DelegatingTransport {
      noteLatencySensitive(): void {
        hints++;
      }
    }
    const channels: Channel[] = [];
    const served = new Session(b, { role: 'responder', keepaliveIntervalMs: 0, onOpen: (r) => channels.push(r.accept()) });
    const client = new Session(new Hinted(a), { role: 'initiator', keepaliveIntervalMs: 0 });
    cleanups.push(() => {
      client.close();
      served.close();
    });
    const bulk = client.openChannel({ host: 'bulk', port: 1 });
    bulk.write(Buffer.alloc(64 * KiB));
    await until(() => channels.length === 1, 10_000, 'accepted');
    expect(hints).toBe(0);
    // A bulk connection's header (one light write, then bulk) is no hint.
    const bulk2 = client.openChannel({ host: 'bulk', port: 3 });
    bulk2.write(Buffer.from('header'));
    bulk2.write(Buffer.alloc(64 * KiB));
    expect(hints).toBe(0);
    const key = client.openChannel({ host: 'key', port: 2 });
    key.write(Buffer.from('k'));
    expect(hints).toBe(0);
    await until(() => key.pendingBytes === 0, 10_000, 'the first keystroke sent');
    key.write(Buffer.from('k'));
    expect(hints).toBe(1);
  });
});
