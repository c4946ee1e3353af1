// The link emulator relays bytes intact and in order (with jitter), carries half-close, adds at
// least the configured delay, and pauses a fast sender instead of queueing without bound.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { combineLegs, LinkEmulator, LINK_QUEUE_SLACK_BYTES } from '../bench/link-emulator.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

async function server(onConn: (s: net.Socket) => void): Promise<number> {
  const srv = net.createServer(onConn);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const sockets = new Set<net.Socket>();
  srv.on('connection', (s) => sockets.add(s));
  closers.push(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => srv.close(() => r()));
  });
  return (srv.address() as net.AddressInfo).port;
}

async function emulator(port: number, leg: { oneWayMs: number; jitterMs: number; mbps: number }): Promise<number> {
  const e = new LinkEmulator({ targetHost: '127.0.0.1', targetPort: port, leg });
  const p = await e.listen();
  closers.push(() => e.close());
  return p;
}

/** Sends `data`, half-closes, and collects everything the echo returns until its EOF. */
async function echoThrough(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const parts: Buffer[] = [];
    s.on('data', (d: Buffer) => parts.push(d));
    s.on('end', () => {
      resolve(Buffer.concat(parts));
      s.destroy();
    });
    s.on('error', reject);
    s.end(data);
  });
}

describe('link emulator', () => {
  it('relays bytes intact and in order with delay, jitter and a cap, and carries half-close', async () => {
    const target = await server((s) => s.pipe(s));
    const port = await emulator(target, { oneWayMs: 2, jitterMs: 3, mbps: 200 });
    const data = Buffer.alloc(2 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4) data.writeUInt32BE(i, i);
    const back = await echoThrough(port, data);
    expect(back.equals(data)).toBe(true);
  });

  it('is a plain relay when the leg is empty', async () => {
    const target = await server((s) => s.pipe(s));
    const port = await emulator(target, { oneWayMs: 0, jitterMs: 0, mbps: 0 });
    const back = await echoThrough(port, Buffer.from('hello'));
    expect(back.toString()).toBe('hello');
  });

  it('adds at least the round trip of the leg', async () => {
    const target = await server((s) => s.pipe(s));
    const port = await emulator(target, { oneWayMs: 20, jitterMs: 0, mbps: 0 });
    const t0 = performance.now();
    await echoThrough(port, Buffer.from('x'));
    // connect handshake (one RTT) + the byte there and back (one RTT)
    expect(performance.now() - t0).toBeGreaterThanOrEqual(80);
  });

  it('pauses a fast sender: bytes accepted stay near one bandwidth-delay product ahead of the reader', async () => {
    let received = 0;
    const target = await server((s) => s.on('data', (d: Buffer) => (received += d.length)));
    const leg = { oneWayMs: 50, jitterMs: 0, mbps: 8 }; // 1 MB/s: BDP 50 KB
    const port = await emulator(target, leg);
    const s = net.connect({ host: '127.0.0.1', port });
    closers.push(async () => void s.destroy());
    await new Promise<void>((r) => s.once('connect', () => r()));
    const chunk = Buffer.alloc(64 * 1024);
    let written = 0;
    const deadline = Date.now() + 1500;
    // Write while the socket accepts; stop at the first refusal or the deadline.
    for (let i = 0; i < 2000 && Date.now() < deadline; i++) {
      const ok = s.write(chunk);
      written += chunk.length;
      if (!ok) {
        // Take the drain listener off when the timer wins: one per refused write piled up past
        // Node's limit of 10 (MaxListenersExceededWarning) while the reader is stalled.
        let onDrain: (() => void) | undefined;
        await Promise.race([new Promise<void>((r) => s.once('drain', (onDrain = r))), new Promise((r) => setTimeout(r, 100))]);
        s.off('drain', onDrain!);
      }
    }
    const sent = written - s.writableLength;
    // Kernel socket buffers on the two loopback hops hold a few MB; the emulator queue holds
    // BDP + slack. Without backpressure the loop would write its full 125 MB.
    expect(sent - received).toBeLessThan(LINK_QUEUE_SLACK_BYTES + 50_000 + 12 * 1024 * 1024);
    expect(written).toBeLessThan(16 * 1024 * 1024);
  });

  it('folds legs in series: delays add, the narrowest cap wins', () => {
    expect(
      combineLegs([
        { oneWayMs: 10, jitterMs: 1, mbps: 100 },
        { oneWayMs: 5, jitterMs: 0, mbps: 0 },
      ]),
    ).toEqual({ oneWayMs: 15, jitterMs: 1, mbps: 100 });
  });
});
