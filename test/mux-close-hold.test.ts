// A flush that would carry nothing but CLOSE frames waits closeHoldTurns turns of the loop, so the
// CLOSE rides in the message of what the next turn sends (a proxy's next connection's OPEN) rather
// than being sealed and written alone; a CLOSE with nothing after it still goes.
import { once } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type Channel, type MuxConfig, Session } from '../src/mux/index.js';
import { FrameType, HEADER_SIZE } from '../src/mux/constants.js';
import { DelegatingTransport } from './helpers/delegating-transport.js';
import { transportPair } from './helpers/session-pair.js';

/** A loop turn: everything queued with setImmediate before this resolves has run. */
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** Frame type names by their wire value. */
const FRAME_NAMES = new Map<number, string>(Object.entries(FrameType).map(([name, value]) => [value, name]));

/** Records, per message the session sends, its frames as 'TYPE id' (PINGs and PONGs left out: they come on their own clock). */
class FrameRecorder extends DelegatingTransport {
  readonly messages: string[][] = [];
  override send(parts: readonly Buffer[]): boolean {
    const message = Buffer.concat(parts);
    const frames: string[] = [];
    for (let at = 0; at + HEADER_SIZE <= message.length; at += HEADER_SIZE + message.readUInt32BE(at + 6)) {
      const type = message[at]!;
      if (type !== FrameType.PING && type !== FrameType.PONG)
        frames.push(`${FRAME_NAMES.get(type) ?? type} ${message.readUInt32BE(at + 2)}`);
    }
    this.messages.push(frames);
    return super.send(parts);
  }
}

interface Pair {
  initiator: Session;
  responder: Session;
  sent: FrameRecorder;
  cleanup(): Promise<void>;
}

/**
 * Two sessions over TCP, the initiator's messages recorded. Timers are fake: the round-trip
 * estimator's start-up PINGs (on timers) would otherwise go out in any turn, and a CLOSE rightly
 * goes with whatever else is sent.
 */
async function recordedPair(config: Partial<MuxConfig>): Promise<Pair> {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
  const pair = await transportPair('tcp');
  const sent = new FrameRecorder(pair.a);
  const initiator = new Session(sent, { keepaliveIntervalMs: 0, ...config, role: 'initiator' });
  const responder = new Session(pair.b, { keepaliveIntervalMs: 0, ...config, role: 'responder' });
  return {
    initiator,
    responder,
    sent,
    cleanup: async () => {
      initiator.close();
      responder.close();
      await pair.cleanup();
      vi.useRealTimers();
    },
  };
}

describe('a CLOSE alone waits for the next turn', () => {
  let pair: Pair | undefined;
  afterEach(async () => {
    await pair?.cleanup();
    pair = undefined;
  });

  /** An open, accepted channel whose first bytes the responder has read; resolves with the responder's end of it. */
  async function openOne(p: Pair, port: number): Promise<{ channel: Channel; far: Channel }> {
    const far = new Promise<Channel>((resolve) => p.responder.once('open', (request) => resolve(request.accept())));
    const channel = p.initiator.openChannel({ host: '127.0.0.1', port });
    channel.write(Buffer.from('first'));
    const accepted = await far;
    await once(accepted, 'data');
    await once(channel, 'accepted');
    return { channel, far: accepted };
  }

  /**
   * Ends one channel, then after the flush that would have sent its CLOSE (as a proxy accepts its
   * next connection and reads its first bytes) opens another with data; returns the messages the
   * initiator sent from the end on.
   */
  async function closeThenOpen(config: Partial<MuxConfig>): Promise<string[][]> {
    pair = await recordedPair(config);
    const p = pair;
    const { channel, far } = await openOne(p, 1000);
    await nextTurn();
    const before = p.sent.messages.length;
    const nextOpen = new Promise<Channel>((resolve) => p.responder.once('open', (request) => resolve(request.accept())));
    const ended = once(far, 'end');
    far.resume();
    channel.end();
    // end() queues the session's flush (an immediate) at once; this immediate runs right after
    // it, as a proxy's next connection's first read comes after it, in the next poll phase.
    setImmediate(() => p.initiator.openChannel({ host: '127.0.0.1', port: 1001 }).write(Buffer.from('next')));
    const second = await nextOpen;
    await once(second, 'data');
    await ended;
    return p.sent.messages.slice(before).filter((frames) => frames.length > 0);
  }

  it("sends a channel's CLOSE in one message with the OPEN and data queued after it", async () => {
    expect(await closeThenOpen({})).toEqual([['OPEN 3', 'CLOSE 1', 'DATA 3']]);
  });

  it('sends them apart with closeHoldTurns 0', async () => {
    expect(await closeThenOpen({ closeHoldTurns: 0 })).toEqual([['CLOSE 1'], ['OPEN 3', 'DATA 3']]);
  });

  it('still sends a CLOSE that nothing follows', async () => {
    pair = await recordedPair({});
    const { channel, far } = await openOne(pair, 1002);
    const before = pair.sent.messages.length;
    far.resume();
    channel.end();
    await once(far, 'end');
    expect(pair.sent.messages.slice(before).filter((frames) => frames.length > 0)).toEqual([['CLOSE 1']]);
  });
});
