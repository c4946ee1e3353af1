// When the resumable layer's receiver acknowledges: an exchange of tiny messages (keystrokes,
// echoes) is not acknowledged every `ackEveryMessages`, since each ACK is a record of its own
// through every hop, but once the unacknowledged DATA holds `ackCountMinBytes`; messages of the
// usual sizes still are, every `ackEveryMessages`. The ACK timer is pushed out of the way, so
// only the count and byte rules act.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryTransportPair } from '../src/transport/memory.js';
import { DEFAULT_RESUME_CONFIG, ResumableTransport, type ResumeConfig } from '../src/resume/index.js';
import { DATA_OVERHEAD } from '../src/resume/wire.js';
import { until } from './helpers/until.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** A sender and a receiver over a memory pair; the receiver never acknowledges by its timer. */
function pair(receiverConfig: Partial<ResumeConfig> = {}): { sender: ResumableTransport; delivered: () => number } {
  const [a, b] = createMemoryTransportPair();
  const sender = ResumableTransport.initiate({ transport: a, binding: randomBytes(32) });
  const receiver = ResumableTransport.accept({ transport: b, binding: randomBytes(32) }, { ackDelayMs: 600_000, ...receiverConfig });
  cleanups.push(
    () => sender.close(),
    () => receiver.close(),
  );
  let got = 0;
  receiver.attach({ onMessage: () => got++, onDrain() {}, onClose() {} });
  sender.attach({ onMessage() {}, onDrain() {}, onClose() {} });
  return { sender, delivered: () => got };
}

/** Sends `n` messages of `size` bytes and waits until the receiver has them all. */
async function sendMessages(t: { sender: ResumableTransport; delivered: () => number }, n: number, size: number): Promise<void> {
  const want = t.delivered() + n;
  for (let i = 0; i < n; i++) t.sender.send([Buffer.alloc(size, i)]);
  await until(() => t.delivered() === want, 5000, `${want} messages delivered`);
  // An ACK the last one caused has had the turns it needs to come back.
  await new Promise((r) => setTimeout(r, 20));
}

describe('resumable layer: ACK cadence', () => {
  it('tiny messages are acknowledged once they hold ackCountMinBytes, not every ackEveryMessages', async () => {
    expect(DEFAULT_RESUME_CONFIG.ackEveryMessages).toBe(32);
    expect(DEFAULT_RESUME_CONFIG.ackCountMinBytes).toBe(16 * 1024);
    const t = pair();
    // Echoes of 64 bytes (a keystroke's record): 252 of them (with the DATA byte) stay under 16 KiB.
    const toPass = Math.ceil(DEFAULT_RESUME_CONFIG.ackCountMinBytes / (64 + DATA_OVERHEAD));
    await sendMessages(t, 100, 64);
    expect(t.sender.replayBytes).toBe(100 * (64 + DATA_OVERHEAD)); // three times ackEveryMessages, no ACK
    await sendMessages(t, toPass - 101, 64);
    expect(t.sender.replayBytes).toBe((toPass - 1) * (64 + DATA_OVERHEAD));
    // The one that passes 16 KiB: acknowledged, nothing held.
    await sendMessages(t, 1, 64);
    expect(t.sender.replayBytes).toBe(0);
  });

  it('messages of the usual sizes are acknowledged every ackEveryMessages', async () => {
    const t = pair();
    // An HTTP load's records: 32 of 700 bytes hold more than 16 KiB.
    await sendMessages(t, 31, 700);
    expect(t.sender.replayBytes).toBeGreaterThan(31 * 700);
    await sendMessages(t, 1, 700);
    expect(t.sender.replayBytes).toBe(0);
  });

  it('ackCountMinBytes 0 acknowledges every ackEveryMessages, whatever they hold', async () => {
    const t = pair({ ackCountMinBytes: 0 });
    await sendMessages(t, 31, 64);
    expect(t.sender.replayBytes).toBeGreaterThan(0);
    await sendMessages(t, 1, 64);
    expect(t.sender.replayBytes).toBe(0);
  });
});
