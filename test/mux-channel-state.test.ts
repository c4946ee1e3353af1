import { describe, expect, it } from 'vitest';
import { ChannelState, nextChannelState } from '../src/mux/channel-state.js';
import type { Channel } from '../src/mux/index.js';
import { once, sessionPair } from './helpers/session-pair.js';

describe('channel states', () => {
  it('follow the spec through a real session: opening, open, half-closed, closed', async () => {
    const { initiator, responder, cleanup } = await sessionPair('memory');
    try {
      const accepted = new Promise<Channel>((resolve) => responder.on('open', (request) => resolve(request.accept())));
      const channel = initiator.openChannel({ host: 'x', port: 1 });
      expect(channel.state).toBe(ChannelState.Opening);
      const remote = await accepted;
      expect(remote.state).toBe(ChannelState.Open);
      await once(channel, 'accepted');
      expect(channel.state).toBe(ChannelState.Open);
      remote.resume();
      channel.resume();
      channel.end();
      await once(remote, 'end');
      expect(remote.state).toBe(ChannelState.HalfClosedRemote);
      remote.end();
      await once(channel, 'end');
      expect(channel.state).toBe(ChannelState.Closed);
    } finally {
      await cleanup();
    }
  });

  it('an opener that ends before the ACCEPT is half-closed once it comes, and the data arrives', async () => {
    const { initiator, responder, cleanup } = await sessionPair('memory');
    try {
      // The responder accepts only once the opener has ended: the order under test, by event.
      let openerEnded!: () => void;
      const ended = new Promise<void>((resolve) => (openerEnded = resolve));
      const accepted = new Promise<Channel>((resolve) =>
        responder.on('open', (request) => void ended.then(() => resolve(request.accept()))),
      );
      const channel = initiator.openChannel({ host: 'x', port: 1 });
      channel.end('all of it');
      await once(channel, 'finish');
      expect(channel.state).toBe(ChannelState.OpeningHalfClosedLocal);
      openerEnded();
      const remote = await accepted;
      const chunks: Buffer[] = [];
      remote.on('data', (c: Buffer) => chunks.push(c));
      await once(remote, 'end');
      expect(Buffer.concat(chunks).toString()).toBe('all of it');
      await once(channel, 'accepted');
      expect(channel.state).toBe(ChannelState.HalfClosedLocal);
    } finally {
      await cleanup();
    }
  });

  it('a reset ends every state and is never answered; ACCEPT and CLOSE are refused where the spec has no arrow', () => {
    for (const state of Object.values(ChannelState)) expect(nextChannelState(state, 'reset')).toBe(ChannelState.Reset);
    expect(nextChannelState(ChannelState.Open, 'recv-accept')).toBeUndefined();
    expect(nextChannelState(ChannelState.Opening, 'recv-close')).toBeUndefined();
    expect(nextChannelState(ChannelState.HalfClosedLocal, 'send-close')).toBeUndefined();
  });
});
