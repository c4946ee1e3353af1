// Pacing beside an interactive channel: while a light channel talks beside a transfer, the
// resumable layer lets DATA out no faster than a share of the rate the path last delivered when
// it limited the sender, so that the tunnel's processes keep idle time. The estimate and the
// bucket are checked on DeliveryPacer with an explicit clock; the whole layer on a memory
// transport with a real mux session on top, whose light writes give the hint. Pacing waits until
// the hints have spanned interactivePaceAfterMs: a transfer's own opening and closing exchange
// does not pace it.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { Session, type Channel } from '../src/mux/index.js';
import { DEFAULT_RESUME_CONFIG, ResumableTransport, resolveResumeConfig, type ResumeConfig } from '../src/resume/index.js';
import { InFlightBound } from '../src/resume/in-flight.js';
import { DeliveryPacer, PACE_BURST_MIN_BYTES, PACE_GROWTH_PERCENT, PACE_SAMPLE_MS, PACE_SAMPLES } from '../src/resume/pacer.js';
import { createMemoryTransportPair } from '../src/transport/memory.js';
import { until } from './helpers/until.js';

const KiB = 1024;

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** Feeds `pacer` ACKs of `bytes` every `stepMs` from `from` for `ms`, all with the same wait; returns the end time. */
function acks(pacer: DeliveryPacer, from: number, ms: number, stepMs: number, bytes: number, wait: 'none' | 'path' | 'pacer'): number {
  let t = from;
  for (; t <= from + ms; t += stepMs) pacer.onAck(bytes, t, wait);
  return t;
}

describe('InFlightBound.talkingAt (explicit clock)', () => {
  it('holds once the hints number interactivePaceAfterHints over interactivePaceAfterMs within one hold, and starts over after a gap', () => {
    const bound = new InFlightBound({ ...DEFAULT_RESUME_CONFIG, interactiveHoldMs: 1_000 });
    const { interactivePaceAfterMs: ms, interactivePaceAfterHints: hints } = DEFAULT_RESUME_CONFIG;
    // A transfer's end and the next one's start on a control connection: a few hints within
    // a few ms, a few more a few hundred ms later.
    for (const t of [0, 2, 5, 8, 300, 305]) bound.noteInteractive(t);
    expect(bound.interactiveAt(306)).toBe(true);
    expect(bound.talkingAt(306, ms, hints)).toBe(false);
    expect(bound.talkingAt(900, ms, hints)).toBe(false);
    // Many hints within a few ms: not yet.
    const busy = new InFlightBound({ ...DEFAULT_RESUME_CONFIG, interactiveHoldMs: 1_000 });
    for (let i = 0; i < 2 * hints; i++) busy.noteInteractive(i / 10);
    expect(busy.talkingAt(5, ms, hints)).toBe(false);
    // Typing: hints on and on.
    for (let t = 310; t <= 310 + ms + 10 * hints; t += 10) bound.noteInteractive(t);
    expect(bound.talkingAt(320 + ms + 10 * hints, ms, hints)).toBe(true);
    // A hold's gap ends the run; the next starts over.
    bound.noteInteractive(5_000);
    expect(bound.talkingAt(5_001, ms, hints)).toBe(false);
  });
});

describe('DeliveryPacer (explicit clock)', () => {
  it('learns the delivery rate only from ACKs that arrived while the path held the sender', () => {
    const pacer = new DeliveryPacer(90);
    // An application-limited transfer (the sender never waited): no estimate, no pacing.
    let t = acks(pacer, 0, 10 * PACE_SAMPLE_MS, 1, 100 * KiB, 'none');
    expect(pacer.deliveryRate).toBe(0);
    expect(pacer.spend(10 * 1024 * KiB, t, true)).toBe(false);
    // Path-limited: 128 KiB per ms is the estimate, 90 % of it the paced rate.
    t = acks(pacer, t, 2 * PACE_SAMPLE_MS, 1, 128 * KiB, 'path');
    expect(pacer.deliveryRate).toBeCloseTo(128 * KiB, -2);
    expect(pacer.rate).toBeCloseTo(0.9 * 128 * KiB, -2);
  });

  it('a sample spanning an idle sender, or with too few ACKs, does not count', () => {
    const pacer = new DeliveryPacer(90);
    // An ACK of the opening exchange, seconds of nothing, then a transfer's first ACKs with the
    // sender at its bound: no rate of 2 MiB over 3 s.
    pacer.onAck(1 * KiB, 0, 'none');
    pacer.onAck(2048 * KiB, 3_000, 'path');
    pacer.onAck(2048 * KiB, 3_000 + PACE_SAMPLE_MS / 2, 'path');
    expect(pacer.deliveryRate).toBe(0);
    // Two ACKs 40 ms apart, then one more: three in the sample, fewer than it takes.
    const t = 10_000;
    pacer.onAck(128 * KiB, t, 'path');
    pacer.onAck(128 * KiB, t + 40, 'path');
    pacer.onAck(128 * KiB, t + 80, 'path');
    expect(pacer.deliveryRate).toBe(0);
    // ACKs every ms: counted.
    acks(pacer, t + 100, 2 * PACE_SAMPLE_MS, 1, 128 * KiB, 'path');
    expect(pacer.deliveryRate).toBeCloseTo(128 * KiB, -2);
  });

  it('holds the sender once the burst is spent, for as long as the paced rate needs to make it up', () => {
    const pacer = new DeliveryPacer(50);
    const t = acks(pacer, 0, 2 * PACE_SAMPLE_MS, 1, 100 * KiB, 'path'); // 100 KiB/ms, paced at 50
    const rate = pacer.rate;
    expect(rate).toBeCloseTo(50 * KiB, -2);
    // Not while pacing is off (no interactive channel), however much goes.
    expect(pacer.spend(100 * PACE_BURST_MIN_BYTES, t, false)).toBe(false);
    expect(pacer.ready(t, false)).toBe(true);
    // On: the bucket starts full (the burst), the next byte past it waits.
    expect(pacer.spend(PACE_BURST_MIN_BYTES, t, true)).toBe(false);
    expect(pacer.spend(50 * KiB, t, true)).toBe(true);
    expect(pacer.ready(t, true)).toBe(false);
    expect(pacer.waitMs(t, true)).toBeCloseTo(1, 3); // 50 KiB at 50 KiB/ms
    expect(pacer.ready(t + 0.5, true)).toBe(false);
    expect(pacer.ready(t + 1, true)).toBe(true);
    // The paced rate is what gets through over time: 1,000 ms of 64 KiB messages sent whenever ready.
    let sent = 0;
    for (let now = t + 1; now < t + 1001; now += 0.25) {
      while (pacer.ready(now, true)) {
        pacer.spend(64 * KiB, now, true);
        sent += 64 * KiB;
      }
    }
    expect(sent / 1000).toBeGreaterThan(0.95 * rate);
    expect(sent / 1000).toBeLessThan(1.05 * rate + PACE_BURST_MIN_BYTES / 1000);
  });

  it('a transfer the pacer held does not walk the estimate down: it grows slowly until the path holds the sender again', () => {
    const pacer = new DeliveryPacer(90);
    let t = acks(pacer, 0, 2 * PACE_SAMPLE_MS, 1, 100 * KiB, 'path');
    const learned = pacer.deliveryRate;
    // Paced at 90 %, the path keeping up: its ACKs arrive while the pacer holds the sender.
    const samples = 20;
    t = acks(pacer, t, samples * PACE_SAMPLE_MS - 1, 1, 90 * KiB, 'pacer');
    expect(pacer.deliveryRate).toBeGreaterThan(learned);
    expect(pacer.deliveryRate).toBeLessThanOrEqual(learned * (1 + PACE_GROWTH_PERCENT / 100) ** samples + 1);
    // Paced, the connection below pushing back now and then (a third of the ACKs): still grows.
    const before = pacer.deliveryRate;
    for (let k = 0; k < 10; k++) {
      pacer.notePaced();
      for (let i = 0; i < 6; i++) pacer.onAck(90 * KiB, (t += 1), 'pacer');
      for (let i = 0; i < 3; i++) pacer.onAck(90 * KiB, (t += 1), 'path');
    }
    expect(pacer.deliveryRate).toBeGreaterThan(before);
    // Paced, and held by the in-flight bound as well (a busy machine): what it delivered is the
    // paced rate, which says nothing of the path's.
    const heldByBoth = (): void => {
      for (let k = 0; k < 10; k++) {
        pacer.notePaced();
        t = acks(pacer, t, 4, 1, 90 * KiB, 'path');
      }
    };
    heldByBoth(); // ends the sample the lines above left open
    const grown = pacer.deliveryRate;
    for (let i = 0; i < 20; i++) heldByBoth();
    expect(pacer.deliveryRate).toBe(grown);
    // The path holds the sender again (paced above what it moves now): its rate is the estimate.
    t = acks(pacer, t, (PACE_SAMPLES + 2) * PACE_SAMPLE_MS, 1, 60 * KiB, 'path');
    expect(pacer.deliveryRate).toBeCloseTo(60 * KiB, -2);
    // A faster path-limited one raises it at once.
    acks(pacer, t, 2 * PACE_SAMPLE_MS, 1, 150 * KiB, 'path');
    expect(pacer.deliveryRate).toBeCloseTo(150 * KiB, -2);
  });

  it('a new path (reset) measures again before pacing; 0 % never paces', () => {
    const pacer = new DeliveryPacer(90);
    const t = acks(pacer, 0, 2 * PACE_SAMPLE_MS, 1, 100 * KiB, 'path');
    pacer.reset();
    expect(pacer.rate).toBe(0);
    expect(pacer.spend(100 * PACE_BURST_MIN_BYTES, t, true)).toBe(false);
    const off = new DeliveryPacer(0);
    acks(off, 0, 2 * PACE_SAMPLE_MS, 1, 100 * KiB, 'path');
    expect(off.rate).toBe(0);
    expect(off.spend(100 * PACE_BURST_MIN_BYTES, t, true)).toBe(false);
  });
});

/** A sender and a receiver session over a memory transport, a bulk channel pumping and a light one; `config` for both ends. */
async function bulkBesideKey(config: Partial<ResumeConfig>) {
  const [a, b] = createMemoryTransportPair();
  const binding = randomBytes(32);
  const sender = ResumableTransport.initiate({ transport: a, binding }, config);
  const receiver = ResumableTransport.accept({ transport: b, binding }, config);
  const channels: Channel[] = [];
  const served = new Session(receiver, { role: 'responder', keepaliveIntervalMs: 0, onOpen: (r) => channels.push(r.accept()) });
  const client = new Session(sender, { role: 'initiator', keepaliveIntervalMs: 0 });
  let running = true;
  cleanups.push(() => {
    running = false;
    client.close();
    served.close();
  });
  sender.setPathRtt(0.3);
  const bulk = client.openChannel({ host: 'bulk', port: 1 });
  const key = client.openChannel({ host: 'key', port: 2 });
  await until(() => channels.length === 2, 10_000, 'both channels accepted');
  for (const c of [...channels, bulk, key]) c.on('error', () => {}); // the test's end closes them
  const keys = { arrived: 0 };
  channels[1]!.on('data', (d: Buffer) => (keys.arrived += d.length));
  channels[0]!.resume();
  const chunk = Buffer.alloc(64 * KiB, 0x62);
  const pump = (): void => {
    while (running && bulk.write(chunk)) {}
  };
  bulk.on('drain', pump);
  pump();
  await until(() => sender.replayBytes > 0, 10_000, 'bulk in flight');
  return { sender, key, keys };
}

describe('resumable layer: pacing beside a light channel', () => {
  it('paces a transfer only while a light channel talks beside it, and keystrokes still arrive', async () => {
    const { sender, key, keys } = await bulkBesideKey({ interactiveHoldMs: 300, interactiveQueueDelayMs: 20, interactivePacePercent: 90 });

    // Bulk alone: never paced.
    await new Promise((r) => setTimeout(r, 200));
    expect(sender.pacedRate).toBe(0);

    // A keystroke every 10 ms beside it: paced at 90 % of what the path delivered.
    let typed = 0;
    const typing = setInterval(() => {
      key.write(Buffer.from('k'));
      typed++;
    }, 10);
    cleanups.push(() => clearInterval(typing));
    await until(() => sender.pacedRate > 0, 20_000, 'paced while typing');
    expect(resolveResumeConfig().interactivePacePercent).toBe(0); // off unless asked for
    await until(() => keys.arrived >= typed - 1 && typed > 20, 20_000, 'keystrokes arrive while paced');

    // Typing stops: back to full speed after interactiveHoldMs.
    clearInterval(typing);
    await until(() => sender.pacedRate === 0, 20_000, 'unpaced after the hold');
  });

  it('the few small writes that open or end a transfer (a control connection) do not pace it', async () => {
    const { sender, key } = await bulkBesideKey({ interactiveHoldMs: 60_000, interactiveQueueDelayMs: 20, interactivePacePercent: 90 });
    // Like iperf3's control connection at a test's end and the next one's start: a handful of
    // small writes within a few ms, 150 ms apart, then nothing for as long as the transfer runs.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 5; i++) {
        key.write(Buffer.from('ctl'));
        await new Promise((r) => setImmediate(r));
      }
      await new Promise((r) => setTimeout(r, 150));
    }
    await until(() => sender.inFlightLimit < DEFAULT_RESUME_CONFIG.minInFlight, 20_000, 'the interactive bound counts');
    for (let i = 0; i < 30; i++) {
      expect(sender.pacedRate).toBe(0);
      await new Promise((r) => setTimeout(r, 10));
    }
  });
});
