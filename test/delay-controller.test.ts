// The delay-based in-flight controller on synthetic acknowledgements: no clock, no sockets, so
// each rule is checked exactly: it shrinks when queueing delay rises, grows back when it falls,
// never falls below its floor or a few ACK steps, and does not grow while application-limited.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { DelayController, type DelayControllerConfig } from '../src/resume/delay-controller.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const config: DelayControllerConfig = { initialBytes: 1 * MiB, floorBytes: 256 * KiB, ceilingBytes: 16 * MiB, targetDelayMs: 1 };

/** Feeds `n` ACKs of `step` bytes with round trip `rttMs`, the sender using its whole bound. */
function feed(c: DelayController, n: number, step: number, rttMs: number): void {
  for (let i = 0; i < n; i++) c.onAck(step, rttMs, c.limit);
}

describe('DelayController', () => {
  it('grows while the path shows no queue, up to its ceiling', () => {
    const c = new DelayController(config);
    feed(c, 1, 128 * KiB, 0.3);
    const before = c.limit;
    feed(c, 8, 128 * KiB, 0.3);
    expect(c.limit).toBe(before + 8 * 128 * KiB);
    feed(c, 1000, 128 * KiB, 0.3);
    expect(c.limit).toBe(config.ceilingBytes);
  });

  it('shrinks when queueing delay rises above the target and grows back when it falls', () => {
    const c = new DelayController(config);
    feed(c, 40, 128 * KiB, 0.3); // base round trip 0.3 ms, bound grows
    const grown = c.limit;
    feed(c, 40, 128 * KiB, 5); // 4.7 ms of queue against a 1 ms target
    expect(c.queueDelayMs).toBeCloseTo(4.7, 5);
    expect(c.limit).toBeLessThan(grown);
    feed(c, 200, 128 * KiB, 5);
    const shrunk = c.limit;
    expect(shrunk).toBe(3 * 128 * KiB); // the floor here is three ACK steps
    feed(c, 40, 128 * KiB, 0.4); // the queue drained
    expect(c.limit).toBeGreaterThan(shrunk);
  });

  it('holds at the target: a queue exactly at the target neither grows nor shrinks the bound', () => {
    const c = new DelayController(config);
    feed(c, 4, 128 * KiB, 0.5);
    feed(c, 4, 128 * KiB, 1.5); // 1 ms queue = target, once the standing window holds only these
    const held = c.limit;
    feed(c, 20, 128 * KiB, 1.5);
    expect(c.limit).toBe(held);
  });

  it('shrinks by at most half of what each ACK covers (at most halving per round trip)', () => {
    const c = new DelayController({ ...config, initialBytes: 8 * MiB });
    feed(c, 1, 64 * KiB, 0.2);
    feed(c, 4, 64 * KiB, 100); // a huge queue fills the standing window
    const before = c.limit;
    c.onAck(64 * KiB, 100, c.limit);
    expect(before - c.limit).toBe(32 * KiB);
  });

  it('filters one late ACK: the standing round trip is the lowest of the last few', () => {
    const c = new DelayController(config);
    feed(c, 4, 128 * KiB, 0.3);
    const before = c.limit;
    c.onAck(128 * KiB, 20, c.limit); // one delayed sample among fast ones
    expect(c.queueDelayMs).toBe(0);
    expect(c.limit).toBeGreaterThan(before);
  });

  it('keeps at least three ACK steps in flight, so a peer that acknowledges rarely never stalls it', () => {
    const c = new DelayController(config);
    feed(c, 1, 2 * MiB, 1);
    feed(c, 100, 2 * MiB, 50); // an older peer: one ACK per 2 MiB, and a long queue
    expect(c.limit).toBe(6 * MiB);
  });

  it('does not grow while the sender leaves most of the bound unused', () => {
    const c = new DelayController(config);
    for (let i = 0; i < 50; i++) c.onAck(64 * KiB, 0.3, 100 * KiB);
    expect(c.limit).toBe(config.initialBytes);
  });

  it('takes no delay sample from small ACKs (sent on the peer timer)', () => {
    const c = new DelayController(config);
    feed(c, 4, 128 * KiB, 0.3);
    c.onAck(200, 25, c.limit);
    expect(c.queueDelayMs).toBe(0);
    expect(c.baseRttMs).toBeCloseTo(0.3, 5);
  });

  it('aims at a quarter of the base round trip on long paths, so jitter is not taken for a queue', () => {
    const c = new DelayController(config);
    feed(c, 1, 128 * KiB, 60);
    expect(c.targetMs).toBe(15);
  });

  it('starts over on a new path', () => {
    const c = new DelayController(config);
    feed(c, 100, 128 * KiB, 0.3);
    c.newPath();
    expect(c.limit).toBe(config.initialBytes);
    expect(c.baseRttMs).toBe(Infinity);
  });

  it('ignores nonsense samples', () => {
    const c = new DelayController(config);
    c.onAck(128 * KiB, Number.NaN, c.limit);
    c.onAck(128 * KiB, -1, c.limit);
    c.onAck(0, 1, c.limit);
    expect(c.limit).toBe(config.initialBytes);
    expect(c.baseRttMs).toBe(Infinity);
  });

  it('stays within [floor, ceiling] whatever the ACKs say', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            fc.integer({ min: 1, max: 4 * MiB }),
            fc.double({ min: 0, max: 500, noNaN: true }),
            fc.double({ min: 0, max: 1, noNaN: true }),
          ),
          { maxLength: 300 },
        ),
        (acks) => {
          const c = new DelayController(config);
          for (const [step, rtt, used] of acks) {
            c.onAck(step, rtt, used * c.limit);
            expect(c.limit).toBeGreaterThanOrEqual(config.floorBytes);
            expect(c.limit).toBeLessThanOrEqual(config.ceilingBytes);
            expect(Number.isInteger(c.limit)).toBe(true);
          }
        },
      ),
    );
  });
});
