// A stream token's life starts when it is handed out: a device that takes longer than the token
// life to answer still gets working tokens (before: they were minted, and started dying, before
// the device was rung), and the tokens still expire that long after the answer.
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { createSasToken, deviceResource, hubResource, nowSeconds, parseConnectionString } from '../src/auth/index.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { httpCall, tryUpgrade } from './helpers/raw.js';

let th: TestHub | undefined;
afterEach(async () => {
  await th?.close();
  th = undefined;
});

const TTL_MS = 300;

/** A device on its control socket that accepts every stream request after `delayMs`, handing the request to `onRing`. */
async function slowDevice(
  hub: TestHub,
  id: string,
  delayMs: number,
  onRing: (m: { url: string; authorizationToken: string }) => void,
): Promise<WebSocket> {
  const cs = parseConnectionString(hub.addDevice(id));
  const token = createSasToken(deviceResource(hub.hub.hostName, id), cs.sharedAccessKey, nowSeconds() + 600);
  const ws = new WebSocket(`ws://127.0.0.1:${hub.hub.port}/devices/${id}/control`, { headers: { authorization: token } });
  ws.on('error', () => {});
  ws.on('message', (data: Buffer) => {
    const m = JSON.parse(data.toString()) as { type: string; requestId: string; url: string; authorizationToken: string };
    if (m.type !== 'streamRequest') return;
    onRing(m);
    setTimeout(() => ws.send(JSON.stringify({ type: 'streamResponse', requestId: m.requestId, accept: true })), delayMs);
  });
  await new Promise<void>((r) => ws.once('open', () => r()));
  return ws;
}

function ask(hub: TestHub, id: string): Promise<{ status: number; body: Record<string, unknown> | undefined }> {
  const key = parseConnectionString(hub.serviceString).sharedAccessKey;
  return httpCall(hub.hub.port, 'POST', `/twins/${id}/streams/ssh`, {
    authorization: createSasToken(hubResource(hub.hub.hostName), key, nowSeconds() + 600, 'service'),
  }) as never;
}

describe('stream token life', () => {
  it('starts when the device has answered: a device slower than the token life still connects, and the service too', async () => {
    th = await startTestHub({ streamTokenTtlMs: TTL_MS, streamPairTimeoutMs: 5000 });
    let ring: { url: string; authorizationToken: string } | undefined;
    const ws = await slowDevice(th, 'dev-slow', 3 * TTL_MS, (m) => (ring = m));
    try {
      const answer = await ask(th, 'dev-slow');
      expect(answer.body?.isAccepted).toBe(true);
      const path = new URL(ring!.url).pathname;
      const device = await tryUpgrade(th.hub.port, path, { authorization: `Bearer ${ring!.authorizationToken}` });
      expect(device.upgraded).toBe(true);
      const service = await tryUpgrade(th.hub.port, path, { authorization: `Bearer ${String(answer.body?.authorizationToken)}` });
      expect(service.upgraded).toBe(true);
      // Both test clients hung up at once: the hub lets go of their sockets (close does not wait on them).
      await th.close();
    } finally {
      ws.terminate();
    }
  });

  it('still ends: a token used later than its life after the answer is refused with ERR_AUTH_EXPIRED', async () => {
    th = await startTestHub({ streamTokenTtlMs: TTL_MS });
    const ws = await slowDevice(th, 'dev-late', 0, () => {});
    try {
      const answer = await ask(th, 'dev-late');
      await new Promise((r) => setTimeout(r, TTL_MS + 200));
      const late = await tryUpgrade(th.hub.port, new URL(String(answer.body?.url)).pathname, {
        authorization: `Bearer ${String(answer.body?.authorizationToken)}`,
      });
      expect([late.status, late.body?.code]).toEqual([401, 'ERR_AUTH_EXPIRED']);
    } finally {
      ws.terminate();
    }
  });
});
