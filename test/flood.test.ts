// Answers the peer provokes are bounded: a peer that sends PINGs, DATA or OPENs for channels that
// are not there, or resume-layer PINGs, and never reads the answers, loses its session with
// ERR_PROTOCOL_FLOOD instead of making this side queue answers without limit; the memory comes
// back once the session is gone. (The property test over arbitrary frame sequences is in
// fuzz-flood.test.ts.)
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import type { DevstreamsError } from '../src/errors.js';
import { Session } from '../src/mux/index.js';
import { CONTROL_FRAME_COST, DEFAULT_MUX_CONFIG } from '../src/mux/config.js';
import { FrameType, INITIAL_SESSION_WINDOW, INITIAL_WINDOW, MAX_FRAME_PAYLOAD_LIMIT, PROTOCOL_VERSION } from '../src/mux/constants.js';
import { encodeFrame, encodePing, encodeStructured } from '../src/mux/frame.js';
import { DEFAULT_RESUME_CONFIG, ResumableTransport } from '../src/resume/index.js';
import { TcpTransport } from '../src/transport/index.js';
import { DEFAULT_TRANSPORT_HIGH_WATER } from '../src/transport/transport.js';
import { heapAfterGc } from './helpers/fuzz.js';
import { createMemoryTransportPair } from '../src/transport/index.js';
import { DEFAULT_MAX_OPEN_BACKLOG } from '../src/crypto/constants.js';
import { closeCryptoPools } from '../src/crypto/worker-pool.js';
import { collect, ensureCryptoWorkerBuilt, securePair } from './crypto-helpers.js';
import WebSocket from 'ws';
import { createSasToken, deviceResource, nowSeconds, parseConnectionString } from '../src/auth/index.js';
import { DEFAULT_CONTROL_SEND_LIMIT } from '../src/hub/config.js';
import { startTestHub } from './helpers/hub.js';
import { StuckTransport } from './helpers/stuck-transport.js';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

const hello = (): Buffer =>
  encodeStructured(FrameType.HELLO, 0, {
    version: PROTOCOL_VERSION,
    initialWindow: INITIAL_WINDOW,
    sessionWindow: INITIAL_SESSION_WINDOW,
    maxFramePayload: MAX_FRAME_PAYLOAD_LIMIT,
  });

const ping = (n: number): Buffer => {
  const opaque = Buffer.alloc(8);
  opaque.writeUInt32BE(n);
  return encodePing(FrameType.PING, opaque);
};

const BACKLOG = 64 * 1024;
const STUCK_HIGH_WATER = 64 * 1024;

/** A responder session whose peer never reads; the test plays the peer. */
function victim(extra: { onOpen?: boolean } = {}): {
  session: Session;
  link: StuckTransport;
  closed: Promise<DevstreamsError | undefined>;
} {
  const link = new StuckTransport(STUCK_HIGH_WATER);
  const session = new Session(link, { role: 'responder', keepaliveIntervalMs: 0, maxControlBacklog: BACKLOG });
  if (extra.onOpen) session.on('open', (req) => req.refuse('ERR_TARGET_NOT_ALLOWED', 'not on the allow list'));
  cleanups.push(() => session.close());
  const closed = new Promise<DevstreamsError | undefined>((r) => session.once('close', r));
  link.inject(hello());
  return { session, link, closed };
}

/**
 * Feeds `messages()` (each a message of frames) until the session closes or `limit` messages went
 * in, letting the session flush between them; returns the most it held at any point.
 */
async function flood(v: ReturnType<typeof victim>, message: (i: number) => Buffer, limit: number): Promise<number> {
  let peak = 0;
  for (let i = 0; i < limit && !v.session.closed; i++) {
    v.link.inject(message(i));
    await Promise.resolve(); // past the backlog the session offers its answers at once
    peak = Math.max(peak, v.link.unread + v.session.controlBacklog);
  }
  return peak;
}

/** What the session may hold at most: what the transport took before it said stop, plus the backlog. */
const HOLD_BOUND = STUCK_HIGH_WATER + DEFAULT_MUX_CONFIG.maxBatchBytes + BACKLOG;

describe('mux: answers the peer provokes are bounded', () => {
  it('has documented defaults', () => {
    expect(DEFAULT_MUX_CONFIG.maxControlBacklog).toBe(1024 * 1024);
    expect(CONTROL_FRAME_COST).toBe(64);
    expect(DEFAULT_RESUME_CONFIG.maxPingsUnanswered).toBe(1024);
  });

  it('PINGs from a peer that never reads: ERR_PROTOCOL_FLOOD, the transport is torn down', async () => {
    const v = victim();
    const peak = await flood(v, (i) => Buffer.concat(Array.from({ length: 500 }, (_, k) => ping(i * 500 + k))), 1000);
    expect(v.session.closed).toBe(true);
    expect((await v.closed)?.code).toBe('ERR_PROTOCOL_FLOOD');
    expect(peak).toBeLessThanOrEqual(HOLD_BOUND);
    expect(v.link.closed).toBe(true);
    expect(v.link.closedWith).toMatchObject({ code: 'ERR_PROTOCOL_FLOOD' });
    expect(v.session.controlBacklog).toBe(0);
  });

  it('DATA for channels that were never opened (each answered by a RESET): ERR_PROTOCOL_FLOOD', async () => {
    const v = victim();
    let id = 1;
    const peak = await flood(v, () => Buffer.concat(Array.from({ length: 200 }, () => encodeFrame(FrameType.DATA, (id += 2)))), 2000);
    expect(v.session.closed).toBe(true);
    expect((await v.closed)?.code).toBe('ERR_PROTOCOL_FLOOD');
    expect(peak).toBeLessThanOrEqual(HOLD_BOUND);
  });

  it('OPENs this side refuses (each answered by a RESET): ERR_PROTOCOL_FLOOD', async () => {
    const v = victim({ onOpen: true });
    let id = -1;
    const peak = await flood(
      v,
      () => Buffer.concat(Array.from({ length: 200 }, () => encodeStructured(FrameType.OPEN, (id += 2), { host: '10.0.0.1', port: 22 }))),
      2000,
    );
    expect(v.session.closed).toBe(true);
    expect((await v.closed)?.code).toBe('ERR_PROTOCOL_FLOOD');
    expect(peak).toBeLessThanOrEqual(HOLD_BOUND);
  });

  it('a peer that reads gets every answer: a burst far beyond the backlog over a draining transport does not trip it', async () => {
    const link = new StuckTransport(STUCK_HIGH_WATER);
    const session = new Session(link, { role: 'responder', keepaliveIntervalMs: 0, maxControlBacklog: BACKLOG });
    cleanups.push(() => session.close());
    link.inject(hello());
    for (let i = 0; i < 200; i++) {
      link.inject(Buffer.concat(Array.from({ length: 500 }, (_, k) => ping(k))));
      await Promise.resolve();
      link.readAll(); // this peer reads
    }
    expect(session.closed).toBe(false);
  });

  it('over TCP: the flood ends the session, and the memory comes back once it is gone', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => server.close());
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const attacker = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    attacker.on('error', () => {});
    cleanups.push(() => attacker.destroy());
    await new Promise<void>((r) => attacker.once('connect', () => r()));
    attacker.pause(); // never reads the answers
    const socket = await accepted;

    // A message of 3,600 PINGs, length-prefixed for the TCP transport (about 65 KiB).
    const pings = Buffer.concat(Array.from({ length: 3600 }, (_, k) => ping(k)));
    const message = Buffer.concat([Buffer.alloc(4), pings]);
    message.writeUInt32BE(pings.length, 0);
    const prefixedHello = Buffer.concat([Buffer.alloc(4), hello()]);
    prefixedHello.writeUInt32BE(prefixedHello.length - 4, 0);

    const before = heapAfterGc() + process.memoryUsage().arrayBuffers;
    const transport = new TcpTransport(socket);
    const session = new Session(transport, { role: 'responder', keepaliveIntervalMs: 0 });
    const closed = new Promise<DevstreamsError | undefined>((r) => session.once('close', r));
    attacker.write(prefixedHello);
    let peak = 0;
    // At most 64 MiB: the kernel's buffers on both ends take several MiB of answers first.
    for (let i = 0; i < 1000 && !session.closed; i++) {
      if (!attacker.write(message)) await new Promise<void>((r) => attacker.once('drain', () => r()));
      await new Promise<void>((r) => setImmediate(r));
      peak = Math.max(peak, transport.bufferedAmount + session.controlBacklog);
    }
    expect(session.closed).toBe(true);
    expect((await closed)?.code).toBe('ERR_PROTOCOL_FLOOD');
    expect(peak).toBeLessThanOrEqual(
      DEFAULT_TRANSPORT_HIGH_WATER + DEFAULT_MUX_CONFIG.maxBatchBytes + DEFAULT_MUX_CONFIG.maxControlBacklog,
    );
    expect(socket.destroyed).toBe(true);
    const attackerClosed = new Promise((r) => attacker.once('close', r)); // its buffers are released
    attacker.destroy();
    await attackerClosed;
    const after = heapAfterGc() + process.memoryUsage().arrayBuffers;
    expect(after - before).toBeLessThan(16 * 1024 * 1024);
  });
});

describe('resumable layer: answers the peer provokes are bounded', () => {
  /** A responder whose link's peer never reads. */
  function resumable(): { t: ResumableTransport; link: StuckTransport; lost: Promise<DevstreamsError> } {
    const link = new StuckTransport(1024);
    const t = ResumableTransport.accept({ transport: link, binding: randomBytes(32) }, { maxPingsUnanswered: 64 });
    t.attach({ onMessage() {}, onDrain() {}, onClose() {} });
    cleanups.push(() => t.close());
    const lost = new Promise<DevstreamsError>((r) => t.events.once('lost', r));
    return { t, link, lost };
  }

  const resumePing = (n: number): Buffer => {
    const b = Buffer.alloc(5);
    b[0] = 3;
    b.writeUInt32BE(n, 1);
    return b;
  };

  it('PINGs from a peer that never reads: ERR_PROTOCOL_FLOOD once the link is full, the link is torn down', async () => {
    const { t, link, lost } = resumable();
    let peak = 0;
    for (let i = 0; i < 100_000 && t.state !== 'closed'; i++) {
      link.inject(resumePing(i));
      peak = Math.max(peak, link.unread);
    }
    expect(t.state).toBe('closed');
    expect((await lost).code).toBe('ERR_PROTOCOL_FLOOD');
    expect(peak).toBeLessThanOrEqual(1024 + 5);
    expect(link.closed).toBe(true);
  });

  it('DATA from a peer that never reads: cumulative ACKs do not pile up while the link is full', async () => {
    const { t, link } = resumable();
    const data = Buffer.from([1]);
    let peak = 0;
    for (let i = 0; i < 20_000; i++) {
      link.inject(data);
      peak = Math.max(peak, link.unread);
    }
    expect(t.state).toBe('active');
    expect(peak).toBeLessThanOrEqual(1024 + 9);
  });
});

describe('record layer: records the peer pushes faster than workers open them are bounded', () => {
  it('past maxOpenBacklog the session ends with ERR_PROTOCOL_FLOOD', async () => {
    expect(DEFAULT_MAX_OPEN_BACKLOG).toBe(96 * 1024 * 1024);
    ensureCryptoWorkerBuilt();
    const [a, b] = createMemoryTransportPair({ highWaterMark: 64 * 1024 * 1024 });
    try {
      // The sender ignores every window: 8 MiB of records in one turn, which arrive together.
      const [sender, victim] = await securePair(a, b, {}, { crypto: 'workers', maxOpenBacklog: 1024 * 1024 });
      const ep = collect(victim);
      collect(sender);
      const record = Buffer.alloc(60 * 1024, 1);
      for (let i = 0; i < 140; i++) sender.send([record]);
      expect(await ep.closed).toMatchObject({ code: 'ERR_PROTOCOL_FLOOD' });
    } finally {
      await closeCryptoPools();
    }
  });
});

describe('hub control socket: answers a device provokes are bounded', () => {
  it('a device that renews its token without reading the answers is cut off past controlSendLimit; the hub keeps serving', async () => {
    expect(DEFAULT_CONTROL_SEND_LIMIT).toBe(1024 * 1024);
    const th = await startTestHub({ controlSendLimit: 64 * 1024 });
    cleanups.push(() => void th.close());
    const cs = parseConnectionString(th.addDevice('dev-renews'));
    const token = createSasToken(deviceResource(th.hub.hostName, 'dev-renews'), cs.sharedAccessKey, nowSeconds() + 600);
    const ws = new WebSocket(`ws://127.0.0.1:${th.hub.port}/devices/dev-renews/control`, { headers: { authorization: token } });
    ws.on('error', () => {});
    cleanups.push(() => ws.terminate());
    await new Promise<void>((r) => ws.once('open', () => r()));
    const socket = (ws as unknown as { _socket: net.Socket })._socket;
    socket.pause(); // never reads the answers
    let closed = false;
    socket.once('close', () => (closed = true));
    const renew = JSON.stringify({ type: 'renew', token });
    // At most about 100 MiB of renewals: the kernel's buffers on both ends take several MiB of answers first.
    for (let i = 0; i < 500 && !closed; i++) {
      for (let k = 0; k < 1000; k++) ws.send(renew);
      if (socket.writableLength > 1024 * 1024) await new Promise<void>((r) => socket.once('drain', () => r()));
      await new Promise<void>((r) => setImmediate(r));
    }
    expect(closed).toBe(true);
    for (let i = 0; i < 100 && th.hub.connectedDevices > 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(th.hub.connectedDevices).toBe(0);
    const health = await fetch(`http://127.0.0.1:${th.hub.port}/healthz`);
    expect(health.status).toBe(200);
  });
});
