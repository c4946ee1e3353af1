import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import type { Channel } from '../src/mux/index.js';
import { type SessionPair, sessionPair } from './helpers/session-pair.js';

/** A loop turn: everything queued with setImmediate before this resolves has run. */
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('batching across the callbacks of one loop turn', () => {
  let pair: SessionPair | undefined;
  afterEach(async () => {
    await pair?.cleanup();
    pair = undefined;
  });

  it('writes to many channels from separate callbacks (each followed by its microtasks) leave in one transport message', async () => {
    pair = await sessionPair('tcp', { keepaliveIntervalMs: 0 });
    const received: Promise<unknown>[] = [];
    pair.responder.on('open', (request) => {
      const ch = request.accept();
      received.push(once(ch, 'data'));
    });
    const channels: Channel[] = [];
    for (let i = 0; i < 10; i++) channels.push(pair.initiator.openChannel({ host: '127.0.0.1', port: 1000 + i }));
    await Promise.all(channels.map((ch) => once(ch, 'accepted')));
    await nextTurn();
    const before = pair.initiator.stats.messagesSent;
    // As ten sockets' 'data' callbacks in one poll phase: Node runs the microtask queue after each.
    for (const ch of channels) {
      ch.write(Buffer.from('x'.repeat(64)));
      await Promise.resolve();
      await Promise.resolve();
    }
    await nextTurn();
    expect(pair.initiator.stats.messagesSent - before).toBe(1);
    await Promise.all(received);
    expect(received).toHaveLength(10);
  });
});
