import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import type { DevstreamsError } from '../src/errors.js';
import { ResumableTransport, type Link } from '../src/resume/index.js';
import { generateStaticKeyPair, acceptAnyKey, expectKey } from '../src/crypto/index.js';
import type { Channel, OpenRequest } from '../src/mux/index.js';
import { DeviceClient, ServiceClient } from '../src/sdk/index.js';
import { rawPair, securePair } from './crypto-helpers.js';
import { startTestHub, until } from './helpers/hub.js';
import { DelegatingTransport } from './helpers/delegating-transport.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A transport that records what is sent through it (the attacker's view of our own messages). */
class Recorder extends DelegatingTransport {
  readonly sent: Buffer[] = [];
  override send(parts: readonly Buffer[]): boolean {
    this.sent.push(Buffer.concat(parts));
    return this.inner.send(parts);
  }
}

/** A fresh TCP connection with a Noise handshake on it: the two links and a way to cut the socket. */
async function connection(): Promise<{ i: Link; r: Link; cut(): Promise<void> }> {
  const raw = await rawPair('tcp');
  const [si, sr] = await securePair(raw.a, raw.b);
  return {
    i: { transport: si, binding: si.session.handshakeHash },
    r: { transport: sr, binding: sr.session.handshakeHash },
    cut: raw.cleanup,
  };
}

describe('resume proofs', () => {
  it('refuses a replayed RESUME on another connection, and the session still resumes after it', async () => {
    const a = await connection();
    const ri = ResumableTransport.initiate(a.i, { giveUpMs: 20_000 });
    const rr = ResumableTransport.accept(a.r, { giveUpMs: 20_000 });
    cleanups.push(async () => {
      ri.close();
      rr.close();
    });
    const got: Buffer[] = [];
    rr.attach({ onMessage: (m) => got.push(Buffer.from(m)), onDrain() {}, onClose() {} });
    ri.attach({ onMessage() {}, onDrain() {}, onClose() {} });
    const sent: Buffer[] = [];
    const send = (n: number): void => {
      for (let k = 0; k < n; k++) {
        const m = randomBytes(1 + (k % 700));
        sent.push(m);
        ri.send([m]);
      }
    };
    send(50);
    await until(() => got.length === 50);
    ri.setPathRtt(0.4); // the first connection was a short path
    expect(ri.inFlightLimit).toBe(ri.config.minInFlight);
    await a.cut();
    await until(() => ri.state === 'suspended' && rr.state === 'suspended');

    // A legitimate resume, recorded.
    const b = await connection();
    const rec = new Recorder(b.i.transport);
    send(20); // queued while suspended
    await Promise.all([ri.resumeOver({ transport: rec, binding: b.i.binding }), rr.acceptResume(b.r)]);
    // A new connection may be a longer path: the bound starts over until it is measured again.
    expect(ri.inFlightLimit).toBe(ri.config.replayHighWater);
    const resumeMessage = rec.sent.find((m) => m[0] === 6)!;
    expect(resumeMessage).toBeDefined();
    await until(() => got.length === 70);
    await b.cut();
    await until(() => ri.state === 'suspended' && rr.state === 'suspended');

    // The hub (or anyone on the path) replays that RESUME on a new connection: refused.
    const c = await connection();
    const refused: DevstreamsError[] = [];
    rr.events.on('refused', (e) => refused.push(e));
    const attempt = rr.acceptResume(c.r);
    c.i.transport.attach({ onMessage() {}, onDrain() {}, onClose() {} });
    c.i.transport.send([resumeMessage]);
    await expect(attempt).rejects.toMatchObject({ code: 'ERR_RESUME_REFUSED' });
    expect(refused[0]?.message).toMatch(/replayed or forged/);
    expect(rr.state).toBe('suspended');
    await c.cut();

    // The real initiator still resumes, and every message arrives exactly once, in order.
    const d = await connection();
    send(30);
    await Promise.all([ri.resumeOver(d.i), rr.acceptResume(d.r)]);
    await until(() => got.length === 100);
    expect(got.map((m) => m.toString('hex'))).toEqual(sent.map((m) => m.toString('hex')));
    expect(ri.resumes).toBe(2);
    cleanups.push(() => d.cut());
  });
});

describe('give-up time', () => {
  it('ends channels on both sides with ERR_SESSION_LOST when the peer never comes back', async () => {
    const hub = await startTestHub();
    cleanups.push(() => hub.close());
    const deviceKeys = generateStaticKeyPair();
    const serviceKeys = generateStaticKeyPair();
    const device = DeviceClient.fromConnectionString(hub.addDevice('dev-gone'), { backoff: { initialMs: 50, maxMs: 200 } });
    const deviceChannels: Channel[] = [];
    device.on('streamRequest', (req) => {
      const onOpen = (o: OpenRequest): void => {
        const ch = o.accept();
        ch.on('error', () => {});
        deviceChannels.push(ch);
        ch.pipe(ch);
      };
      void req.acceptSession({ staticKeys: deviceKeys, verifyPeer: acceptAnyKey, resume: { giveUpMs: 1500 }, mux: { onOpen } });
    });
    await device.open();
    const svc = ServiceClient.fromConnectionString(hub.serviceString);
    cleanups.push(async () => svc.close());
    const ds = await svc.connect('dev-gone', {
      staticKeys: serviceKeys,
      verifyPeer: expectKey(deviceKeys.publicKey),
      // The round-trip rule alone: the echo below is light traffic, which would also count the
      // interactive controller's bound (resume-interactive.test.ts covers that one).
      resume: { giveUpMs: 1500, reconnectInitialMs: 50, reconnectMaxMs: 200, interactiveQueueDelayMs: 0 },
    });
    const ch = ds.session.openChannel({ host: '127.0.0.1', port: 9 });
    const echoed = new Promise<Buffer>((resolve) => ch.once('data', resolve));
    ch.write('hello');
    expect((await echoed).toString()).toBe('hello');
    // The session's round trip sizes what the resumable layer keeps in flight.
    const c = ds.resumable!.config;
    const bound = (): number => Math.min(c.replayHighWater, Math.max(c.minInFlight, Math.round(c.inFlightRate * ds.session.minRttMs!)));
    await until(() => ds.session.minRttMs !== undefined, 5000, 'a round-trip sample');
    expect(ds.resumable!.inFlightLimit).toBe(bound());
    const serviceError = new Promise<Error>((resolve) => ch.once('error', resolve));
    const deviceError = new Promise<Error>((resolve) => deviceChannels[0]!.once('error', resolve));

    await device.close(); // the device goes away for good
    const started = Date.now();
    ds.resumable!.dropConnection('test: the stream dies');
    const [se, de] = await Promise.all([serviceError, deviceError]);
    expect((se as DevstreamsError).code).toBe('ERR_SESSION_LOST');
    expect((de as DevstreamsError).code).toBe('ERR_SESSION_LOST');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    expect(ds.session.closed).toBe(true);
    expect(device.resumeRegistry.size).toBe(0);
    await until(() => hub.hub.activeStreams === 0, 5000, 'no streams left at the hub');
  });
});
