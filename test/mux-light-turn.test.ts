// A keystroke's batch ends the flush's turn. The transport below may hold what one event-loop turn
// sends until the turn ends (the ws transport corks and writes once per turn), so a flush that
// went on sealing bulk batches after the one carrying a light channel's bytes would hold that
// keystroke behind all of them. The rest of the bulk follows in the next turn.
import { afterEach, describe, expect, it } from 'vitest';
import { type Channel, Session } from '../src/mux/index.js';
import { encodeWindow } from '../src/mux/frame.js';
import { StuckTransport } from './helpers/stuck-transport.js';
import { helloFrame, openFrame } from './helpers/mux-frames.js';
import { INITIAL_WINDOW } from '../src/mux/constants.js';

const KiB = 1024;

/** Records each batch and how many batches had been sent when the turn that sent a batch with `mark` ended. */
class TurnTransport extends StuckTransport {
  readonly batches: Buffer[] = [];
  /** Batches sent by the end of the turn in which the marked batch went out. */
  sentByTurnEnd: number | undefined;
  constructor(private readonly mark: Buffer) {
    super(64 * 1024 * 1024); // never says stop: only the turn rule can end the flush
  }
  override send(parts: readonly Buffer[]): boolean {
    const batch = Buffer.concat(parts);
    this.batches.push(batch);
    // process.nextTick runs when the current callback (the flush's turn) returns, as the ws
    // transport's uncork does.
    if (this.sentByTurnEnd === undefined && batch.includes(this.mark)) process.nextTick(() => (this.sentByTurnEnd = this.batches.length));
    return super.send(parts);
  }
}

const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

/**
 * A responder session on a TurnTransport watching for `mark`, with `opened` channels the peer
 * opened (ids 1, 3, 5, ...) and 16 MiB of credit for the session and the first `granted` of them.
 */
async function sessionWithChannels(mark: Buffer, opened: number, granted: number): Promise<{ link: TurnTransport; channels: Channel[] }> {
  const link = new TurnTransport(mark);
  const channels: Channel[] = [];
  const session = new Session(link, { role: 'responder', keepaliveIntervalMs: 0, onOpen: (r) => channels.push(r.accept()) });
  cleanups.push(() => session.close());
  link.inject(helloFrame());
  for (let i = 0; i < opened; i++) link.inject(openFrame(2 * i + 1, i + 1));
  link.inject(encodeWindow(0, 16 * 1024 * KiB));
  for (let i = 0; i < granted; i++) link.inject(encodeWindow(2 * i + 1, 16 * 1024 * KiB));
  await nextTurn();
  expect(channels).toHaveLength(opened);
  return { link, channels };
}

/** A megabyte of bulk, then the keystroke, written in one turn: batches sent by the end of the keystroke's turn. */
async function keystrokeBesideBulk(link: TurnTransport, bulk: Channel, key: Channel, mark: Buffer): Promise<number | undefined> {
  const before = link.batches.length;
  bulk.write(Buffer.alloc(1024 * KiB, 0x62));
  key.write(mark);
  await nextTurn();
  await nextTurn();
  return link.sentByTurnEnd === undefined ? undefined : link.sentByTurnEnd - before;
}

describe('mux: a light channel batch ends the flush turn', () => {
  it('is handed to the transport with at most the bulk already in its batch, and the bulk follows in later turns', async () => {
    const mark = Buffer.from('keystroke-9f3c');
    const { link, channels } = await sessionWithChannels(mark, 2, 1);
    const [bulk, key] = channels as [Channel, Channel];
    await nextTurn();
    const sent = await keystrokeBesideBulk(link, bulk, key, mark);
    expect(sent).toBeDefined();
    // The keystroke's batch is the first or second of the flush (the ring's order), not the 17th.
    expect(sent!).toBeLessThanOrEqual(2);
    for (let i = 0; i < 40 && link.unread < 1024 * KiB; i++) await nextTurn();
    expect(link.unread).toBeGreaterThanOrEqual(1024 * KiB); // the bulk went out all the same
  });

  it('still ends the turn for a keystroke while another light channel waits for credit it never gets', async () => {
    const mark = Buffer.from('keystroke-7d21');
    const { link, channels } = await sessionWithChannels(mark, 3, 2);
    const [bulk, key, stalled] = channels as [Channel, Channel, Channel];
    // The third channel's reader stopped: it spends its window, then a few bytes wait for credit.
    stalled.write(Buffer.alloc(INITIAL_WINDOW, 0x73));
    await nextTurn();
    stalled.write(Buffer.alloc(100, 0x73));
    await nextTurn();
    expect(stalled.pendingBytes).toBe(100);
    const sent = await keystrokeBesideBulk(link, bulk, key, mark);
    expect(sent).toBeDefined();
    expect(sent!).toBeLessThanOrEqual(2);
  });

  it('bulk alone is flushed in one turn, as before', async () => {
    const { link, channels } = await sessionWithChannels(Buffer.from('never-sent'), 1, 1);
    const bulk = channels[0]!;
    await nextTurn();
    bulk.write(Buffer.alloc(1024 * KiB, 0x62));
    await nextTurn();
    expect(link.unread).toBeGreaterThanOrEqual(1024 * KiB);
  });
});
