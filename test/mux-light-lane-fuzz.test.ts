// Random writes, ends, resets, credit grants and drains on an opener's session whose transport is
// blocked between drains, with light lanes from none to 64 KiB: whatever went through the lane or
// the normal flush, each channel's frames keep their order on the wire (OPEN first, DATA in
// order, CLOSE after all of it, nothing after a RESET), and no DATA exceeds the credit granted.
import { expect, it } from 'vitest';
import { type Channel, Session } from '../src/mux/index.js';
import { FrameType, INITIAL_SESSION_WINDOW, INITIAL_WINDOW, MAX_FRAME_PAYLOAD_LIMIT } from '../src/mux/constants.js';
import { FrameDecoder } from '../src/mux/decoder.js';
import { encodeWindow } from '../src/mux/frame.js';
import { StuckTransport } from './helpers/stuck-transport.js';
import { helloFrame } from './helpers/mux-frames.js';

/** Keeps every message the session sent, in order. */
class Rec extends StuckTransport {
  readonly sent: Buffer[] = [];
  override send(parts: readonly Buffer[]): boolean {
    this.sent.push(Buffer.concat(parts));
    return super.send(parts);
  }
}
/** A small seeded generator, so a failure names a seed that reproduces it. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32;
}
const nextTurn = (): Promise<void> => new Promise((r) => setImmediate(r));

it('keeps every channel in order on the wire and within its credit, lane or not', async () => {
  for (let seed = 1; seed <= 400; seed++) {
    const r = rng(seed);
    const link = new Rec(Math.floor(r() * 100_000));
    const lane = [0, 31, 200, 4096, 65536][Math.floor(r() * 5)]!;
    const s = new Session(link, { role: 'initiator', keepaliveIntervalMs: 0, lightLaneBytes: lane });
    link.inject(helloFrame());
    const written = new Map<number, Buffer[]>();
    const ended = new Set<number>();
    const resetIds = new Set<number>();
    const chans: Channel[] = [];
    const grants = new Map<number, number>();
    let sessionGrant = 0;
    for (let turn = 0; turn < 40; turn++) {
      const ops = Math.floor(r() * 5);
      for (let o = 0; o < ops; o++) {
        const x = r();
        if (x < 0.2 || chans.length === 0) {
          const c = s.openChannel({ host: 'h'.repeat(Math.floor(r() * 80)), port: 1 });
          c.on('error', () => {});
          chans.push(c);
          written.set(c.id, []);
        } else {
          const c = chans[Math.floor(r() * chans.length)]!;
          if (c.destroyed || ended.has(c.id)) continue;
          if (x < 0.85) {
            const n = r() < 0.7 ? 1 + Math.floor(r() * 3000) : 1 + Math.floor(r() * 40000);
            const b = Buffer.alloc(n, (c.id * 7 + written.get(c.id)!.length) & 0xff);
            written.get(c.id)!.push(b);
            c.write(b);
          } else if (x < 0.95) {
            ended.add(c.id);
            c.end();
          } else {
            resetIds.add(c.id);
            c.reset('ERR_CHANNEL_RESET', 'r'.repeat(Math.floor(r() * 300)));
          }
        }
      }
      if (r() < 0.2) {
        const grant = 1 + Math.floor(r() * 100_000);
        if (r() < 0.5 || chans.length === 0) {
          sessionGrant += grant;
          link.inject(encodeWindow(0, grant));
        } else {
          const c = chans[Math.floor(r() * chans.length)]!;
          grants.set(c.id, (grants.get(c.id) ?? 0) + grant);
          link.inject(encodeWindow(c.id, grant));
        }
      }
      if (r() < 0.3) link.readAll();
      await nextTurn();
    }
    for (let i = 0; i < 20; i++) {
      link.readAll();
      await nextTurn();
    }
    expect(s.closed, `seed ${seed}: session still open`).toBe(false);
    // Every frame the session sent, in order, checked per channel.
    const seen = new Map<number, { opened: boolean; closed: boolean; reset: boolean; data: Buffer[] }>();
    let sessionData = 0;
    const dec = new FrameDecoder(MAX_FRAME_PAYLOAD_LIMIT);
    dec.push(Buffer.concat(link.sent), (type, id, payload) => {
      if (id === 0) return;
      let st = seen.get(id);
      if (!st) seen.set(id, (st = { opened: false, closed: false, reset: false, data: [] }));
      const where = `seed ${seed} lane ${lane} ch ${id} type ${type}`;
      if (type === FrameType.OPEN) {
        expect(st.opened || st.data.length > 0 || st.closed, where).toBe(false);
        st.opened = true;
      } else if (type === FrameType.DATA) {
        expect(st.opened && !st.closed && !st.reset, where).toBe(true);
        st.data.push(Buffer.from(payload));
        sessionData += payload.length;
      } else if (type === FrameType.CLOSE) {
        expect(st.opened && !st.closed && !st.reset, where).toBe(true);
        st.closed = true;
      } else if (type === FrameType.RESET) {
        st.reset = true;
      }
    });
    expect(sessionData).toBeLessThanOrEqual(INITIAL_SESSION_WINDOW + sessionGrant);
    for (const [id, st] of seen) {
      const got = Buffer.concat(st.data);
      expect(got.length, `seed ${seed} ch ${id}`).toBeLessThanOrEqual(INITIAL_WINDOW + (grants.get(id) ?? 0));
      const want = Buffer.concat(written.get(id) ?? []);
      expect(want.subarray(0, got.length).equals(got), `seed ${seed} ch ${id} prefix`).toBe(true);
      if (st.closed) expect(got.length, `seed ${seed} ch ${id} closed with all`).toBe(want.length);
    }
    s.close();
  }
}, 120_000);
