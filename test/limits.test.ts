// Limits against abuse, one test each: exceed the limit, get the coded refusal. (Channels per
// session: mux-session.test.ts "refuses channels past maxChannels"; handshake time for the
// initiator: crypto-record.test.ts.)
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { createSasToken, deviceResource, hubResource, nowSeconds, parseConnectionString } from '../src/auth/index.js';
import { secureResponder } from '../src/crypto/secure-transport.js';
import { generateStaticKeyPair } from '../src/crypto/keys.js';
import { acceptAnyKey } from '../src/crypto/trust.js';
import { DEFAULT_MAX_PENDING_PER_DEVICE, DEFAULT_MAX_PENDING_PER_SERVICE, DEFAULT_CONTROL_MAX_MESSAGE } from '../src/hub/config.js';
import { DEFAULT_HANDSHAKE_TIMEOUT_MS } from '../src/crypto/constants.js';
import { createMemoryTransportPair } from '../src/transport/index.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { httpCall, type RawAnswer } from './helpers/raw.js';

let th: TestHub | undefined;
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.terminate();
  await th?.close();
  th = undefined;
});

/** A device on the control socket that never answers stream requests. */
async function silentDevice(hub: TestHub, id: string): Promise<WebSocket> {
  const cs = parseConnectionString(hub.addDevice(id));
  const token = createSasToken(deviceResource(hub.hub.hostName, id), cs.sharedAccessKey, nowSeconds() + 600);
  const ws = new WebSocket(`ws://127.0.0.1:${hub.hub.port}/devices/${id}/control`, { headers: { authorization: token } });
  ws.on('error', () => {});
  sockets.push(ws);
  await new Promise<void>((r) => ws.once('open', () => r()));
  return ws;
}

function policyToken(hub: TestHub, policy: 'service' | 'owner'): string {
  const key = parseConnectionString(policy === 'service' ? hub.serviceString : hub.ownerString).sharedAccessKey;
  return createSasToken(hubResource(hub.hub.hostName), key, nowSeconds() + 600, policy);
}

/** Sends a stream request that waits at most 1 s for the device. */
function ask(hub: TestHub, deviceId: string, policy: 'service' | 'owner' = 'service'): Promise<RawAnswer> {
  return httpCall(hub.hub.port, 'POST', `/twins/${deviceId}/streams/ssh`, {
    authorization: policyToken(hub, policy),
    'iothub-streaming-response-timeout-in-seconds': '1',
  });
}

/** Resolves once the hub has rung the device `n` times (requests are pending). */
function rung(ws: WebSocket, n: number): Promise<void> {
  let seen = 0;
  return new Promise((resolve) => {
    ws.on('message', () => {
      if (++seen === n) resolve();
    });
  });
}

describe('limits against abuse', () => {
  it('has documented defaults', () => {
    expect(DEFAULT_MAX_PENDING_PER_DEVICE).toBe(256);
    expect(DEFAULT_MAX_PENDING_PER_SERVICE).toBe(1024);
    expect(DEFAULT_CONTROL_MAX_MESSAGE).toBe(16 * 1024);
    expect(DEFAULT_HANDSHAKE_TIMEOUT_MS).toBe(10_000);
  });

  it('maxPendingPerDevice: past it, stream requests for that device get 429 ERR_RATE_LIMITED', async () => {
    th = await startTestHub({ maxPendingPerDevice: 2 });
    const dev = await silentDevice(th, 'dev-a');
    const ringing = rung(dev, 2);
    const first = [ask(th, 'dev-a'), ask(th, 'dev-a')];
    await ringing;
    const third = await ask(th, 'dev-a');
    expect([third.status, third.body?.code]).toEqual([429, 'ERR_RATE_LIMITED']);
    // The waiting ones end with the device's silence, and the slots come back.
    for (const r of await Promise.all(first)) expect([r.status, r.body?.code]).toEqual([504, 'ERR_STREAM_TIMEOUT']);
    const again = await ask(th, 'dev-a');
    expect(again.body?.code).toBe('ERR_STREAM_TIMEOUT');
  });

  it('maxPendingPerService: past it, one credential gets 429 ERR_RATE_LIMITED; another is unaffected', async () => {
    th = await startTestHub({ maxPendingPerService: 2 });
    const a = await silentDevice(th, 'dev-a');
    const b = await silentDevice(th, 'dev-b');
    const ringing = Promise.all([rung(a, 1), rung(b, 1)]);
    const first = [ask(th, 'dev-a'), ask(th, 'dev-b')];
    await ringing;
    const third = await ask(th, 'dev-b');
    expect([third.status, third.body?.code]).toEqual([429, 'ERR_RATE_LIMITED']);
    const owner = ask(th, 'dev-b', 'owner'); // another credential: its own budget
    for (const r of await Promise.all([...first, owner])) expect(r.body?.code).toBe('ERR_STREAM_TIMEOUT');
    // All slots were given back.
    expect((await ask(th, 'dev-a')).body?.code).toBe('ERR_STREAM_TIMEOUT');
  });

  it('controlMaxMessage: a larger control message closes the socket with 1009; the hub keeps serving', async () => {
    th = await startTestHub({ controlMaxMessage: 1024 });
    const dev = await silentDevice(th, 'dev-a');
    const closed = new Promise<number>((r) => dev.once('close', (code) => r(code)));
    dev.send(JSON.stringify({ type: 'renew', token: 'x'.repeat(2000) }));
    expect(await closed).toBe(1009);
    expect((await httpCall(th.hub.port, 'GET', '/healthz')).status).toBe(200);
  });

  it('handshakeTimeoutMs: a responder whose initiator stalls after message 1 or says nothing fails with ERR_HANDSHAKE_TIMEOUT', async () => {
    for (const sendFirst of [false, true]) {
      const [attacker, victim] = createMemoryTransportPair();
      attacker.attach({ onMessage: () => {}, onDrain: () => {}, onClose: () => {} });
      const result = secureResponder(victim, { staticKeys: generateStaticKeyPair(), verifyPeer: acceptAnyKey, handshakeTimeoutMs: 150 });
      // A syntactically valid message 1 (type 1, version 1, AESGCM, a 32-byte ephemeral key), then silence.
      if (sendFirst) attacker.send([Buffer.concat([Buffer.from([1, 1, 1]), generateStaticKeyPair().publicKey])]);
      await expect(result).rejects.toMatchObject({ code: 'ERR_HANDSHAKE_TIMEOUT' });
      expect(victim.closed).toBe(true);
    }
  });
});
