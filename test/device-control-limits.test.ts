// What a device takes from its hub on the control socket is bounded: a hostile or broken hub
// that rings without reading the answers, or rings with oversize fields, gets its socket cut
// (and the device reconnects with backoff) instead of growing the device's memory; and a socket
// replaced again and again (another device proxy with the same id) backs off and says so.
import type net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { formatConnectionString } from '../src/auth/connection-string.js';
import { CLOSE_CODES, MAX_STREAM_REQUEST_FIELD, parseHubMessage } from '../src/hub-api/control-protocol.js';
import { DeviceClient, type IncomingStreamRequest } from '../src/sdk/index.js';
import { CONTROL_SEND_LIMIT } from '../src/sdk/device-client.js';
import type { DevstreamsError } from '../src/errors.js';

const stops: Array<() => unknown> = [];
afterEach(async () => {
  for (const s of stops.splice(0).reverse()) await s();
});

/** A fake hub on 127.0.0.1 that hands each control socket to `onControl`. */
async function fakeHub(onControl: (ws: WebSocket) => void): Promise<{ port: number; closes: number[] }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  stops.push(
    () =>
      new Promise<void>((r) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => r());
      }),
  );
  const closes: number[] = [];
  wss.on('connection', (ws: WebSocket) => {
    ws.on('close', (code: number) => closes.push(code));
    onControl(ws);
  });
  return { port: (wss.address() as net.AddressInfo).port, closes };
}

function client(port: number, backoff = { initialMs: 20, maxMs: 10_000 }): DeviceClient {
  const cs = formatConnectionString({
    kind: 'device',
    hostName: `127.0.0.1:${port}`,
    deviceId: 'dev-x',
    sharedAccessKey: Buffer.alloc(32, 1).toString('base64'),
    transport: 'ws',
  });
  const c = DeviceClient.fromConnectionString(cs, { backoff });
  c.on('error', () => {});
  stops.push(() => c.close());
  return c;
}

function ring(ws: WebSocket, i: number, fields: Partial<Record<keyof typeof MAX_STREAM_REQUEST_FIELD, string>> = {}): void {
  // A URL elsewhere: the device rejects it, and that rejection is what queues up.
  ws.send(
    JSON.stringify({
      type: 'streamRequest',
      requestId: `r${i}`,
      streamName: 'devstreams',
      streamId: `s${i}`,
      url: 'wss://elsewhere.example/streams/x',
      authorizationToken: 't',
      ...fields,
    }),
  );
}

describe('device control socket limits', () => {
  it('a hub that rings without reading gets its socket cut once CONTROL_SEND_LIMIT bytes of answers queue', async () => {
    let batches = 0;
    const hub = await fakeHub((ws) => {
      // Never read the device's answers; ring as fast as the socket takes it, within a bound.
      (ws as unknown as { _socket: net.Socket })._socket.pause();
      const requestId = 'r'.repeat(MAX_STREAM_REQUEST_FIELD.requestId - 8);
      const next = (): void => {
        if (ws.readyState !== ws.OPEN || batches >= 2000) return;
        batches++;
        for (let i = 0; i < 200; i++) ring(ws, batches * 1000 + i, { requestId: `${requestId}${batches * 1000 + i}` });
        if (ws.bufferedAmount > 4 * 1024 * 1024) setTimeout(next, 5);
        else setImmediate(next);
      };
      next();
    });
    const c = client(hub.port, { initialMs: 60_000, maxMs: 60_000 });
    let maxQueued = 0;
    c.on('streamRequest', (req: IncomingStreamRequest) => {
      maxQueued = Math.max(maxQueued, c.controlBufferedAmount);
      req.acceptSession({}).catch(() => {});
    });
    const dropped = new Promise<DevstreamsError | undefined>((r) => c.once('disconnected', r));
    await c.open();
    const err = await dropped;
    expect(err?.code).toBe('ERR_PROTOCOL_FLOOD');
    expect(err?.message).toMatch(/queued unread by the hub/);
    // One answer past the check at most (each is a few hundred bytes).
    expect(maxQueued).toBeLessThanOrEqual(CONTROL_SEND_LIMIT + 1024);
    expect(batches).toBeLessThan(2000);
  });

  it('a streamRequest with an oversize field is a protocol error: no answer, the socket closes with 4400', async () => {
    expect(() =>
      parseHubMessage(
        JSON.stringify({
          type: 'streamRequest',
          requestId: 'x'.repeat(60_000),
          streamName: 's',
          streamId: 's',
          url: 'u',
          authorizationToken: 't',
        }),
      ),
    ).toThrow(/requestId of 60000 characters/);
    const answers: string[] = [];
    const hub = await fakeHub((ws) => {
      ws.on('message', (d: Buffer) => answers.push(d.toString()));
      ring(ws, 1, { requestId: 'x'.repeat(60_000) });
    });
    const c = client(hub.port, { initialMs: 60_000, maxMs: 60_000 });
    let rung = 0;
    c.on('streamRequest', () => rung++);
    const dropped = new Promise<DevstreamsError | undefined>((r) => c.once('disconnected', r));
    await c.open();
    const err = await dropped;
    expect(err?.code).toBe('ERR_PROTOCOL_FRAME_TOO_LARGE');
    expect(err?.message).toMatch(/the hub broke the protocol/);
    expect([rung, answers.length]).toEqual([0, 0]);
    const end = Date.now() + 5000;
    while (hub.closes.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    expect(hub.closes).toEqual([CLOSE_CODES.protocol]);
  });

  it('a control socket replaced again and again (4409) backs off and names the likely cause', async () => {
    const hub = await fakeHub((ws) => ws.close(CLOSE_CODES.replaced, 'ERR_DEVICE_REPLACED'));
    const c = client(hub.port);
    const retries: Array<{ error: DevstreamsError; delayMs: number }> = [];
    const four = new Promise<void>((r) =>
      c.on('retrying', (info) => {
        retries.push(info);
        if (retries.length === 4) r();
      }),
    );
    await c.open();
    await four;
    await c.close();
    expect(retries.map((r) => r.error.code)).toEqual([
      'ERR_DEVICE_REPLACED',
      'ERR_DEVICE_REPLACED',
      'ERR_DEVICE_REPLACED',
      'ERR_DEVICE_REPLACED',
    ]);
    expect(retries[0]!.error.message).toMatch(/another device proxy uses this id/);
    // Delays are uniform in [c/2, c] with the ceiling c doubling from 20 ms: the fourth is at
    // least 80 ms / 2 = 40 ms, above any first one (at most 20 ms), unless the backoff restarts.
    expect(retries[3]!.delayMs).toBeGreaterThan(retries[0]!.delayMs);
    expect(retries[3]!.delayMs).toBeGreaterThanOrEqual(40);
  });
});
