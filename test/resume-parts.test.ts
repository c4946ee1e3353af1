// A resumable session over a link that hands records up in pieces (a sealed record spanning socket
// reads): DATA goes up in pieces to a layer that takes them (the mux) instead of being joined, is
// joined for one that does not, and control messages split the same way still work.
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryTransportPair } from '../src/transport/memory.js';
import { ResumableTransport } from '../src/resume/index.js';
import { SplittingTransport } from './helpers/splitting-transport.js';
import { until } from './crypto-helpers.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/** Cuts right after the type byte, in the middle, and one byte before the end. */
const cuts = (m: Buffer): number[] => [1, Math.floor(m.length / 2), m.length - 1];

function sessionPair(): { initiator: ResumableTransport; responder: ResumableTransport } {
  const [a, b] = createMemoryTransportPair();
  const binding = randomBytes(32);
  const initiator = ResumableTransport.initiate({ transport: a, binding });
  const responder = ResumableTransport.accept({ transport: new SplittingTransport(b, cuts), binding });
  cleanups.push(() => {
    initiator.close();
    responder.close();
  });
  return { initiator, responder };
}

const messages = Array.from({ length: 40 }, (_, i) => randomBytes([1, 2, 3, 700, 65_000][i % 5]!));

describe('resumable transport over a link that delivers pieces', () => {
  it('hands DATA up in pieces to a handler that takes them, byte for byte and in order', async () => {
    const { initiator, responder } = sessionPair();
    let inited = false;
    responder.events.on('init', () => (inited = true));
    const got: Buffer[] = [];
    let inPieces = 0;
    responder.attach({
      onMessage: (m) => got.push(Buffer.from(m)),
      onMessageParts: (parts) => {
        inPieces++;
        got.push(Buffer.concat(parts));
      },
      onDrain() {},
      onClose() {},
    });
    initiator.attach({ onMessage() {}, onDrain() {}, onClose() {} });
    // Handlers are installed a turn after attach; what arrives before is held and joined.
    await new Promise((r) => setImmediate(r));
    for (const m of messages) initiator.send([m]);
    await until(() => got.length === messages.length);
    expect(inited).toBe(true); // the INIT message came in pieces too
    expect(inPieces).toBeGreaterThan(0);
    got.forEach((m, i) => expect(m.equals(messages[i]!), `message ${i}`).toBe(true));
    // The initiator hears acknowledgements for what arrived in pieces.
    await until(() => initiator.replayBytes === 0);
  });

  it('joins the pieces for a handler that takes whole messages only', async () => {
    const { initiator, responder } = sessionPair();
    const got: Buffer[] = [];
    responder.attach({ onMessage: (m) => got.push(Buffer.from(m)), onDrain() {}, onClose() {} });
    initiator.attach({ onMessage() {}, onDrain() {}, onClose() {} });
    for (const m of messages) initiator.send([m]);
    await until(() => got.length === messages.length);
    got.forEach((m, i) => expect(m.equals(messages[i]!), `message ${i}`).toBe(true));
  });
});
