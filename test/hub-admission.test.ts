// The hub sheds idle and abusive clients: an idle timeout before the first request, header and
// request timeouts, a connection limit with a clear refusal, a per-address limit on refused
// credentials, and sampled refusal logs with every refusal counted in /metrics.
import net from 'node:net';
import WebSocket from 'ws';
import { afterEach, describe, expect, it } from 'vitest';
import { createSasToken, deviceResource, hubResource, nowSeconds, parseConnectionString } from '../src/auth/index.js';
import {
  DEFAULT_HEADERS_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_REFUSALS_PER_ADDRESS,
  DEFAULT_REFUSAL_LOG_LINES,
  DEFAULT_REFUSAL_WINDOW_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
} from '../src/hub/config.js';
import type { HubStartOptions } from '../src/hub/index.js';
import { addressKey } from '../src/hub/admission.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { httpCall, rawBytes } from './helpers/raw.js';

let th: TestHub | undefined;
const sockets: net.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await th?.close();
  th = undefined;
});

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
    sockets.push(s);
  });
}

const closed = (s: net.Socket): Promise<void> => new Promise((r) => (s.destroyed ? r() : s.once('close', () => r())));

async function metric(hub: TestHub, line: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${hub.hub.port}/metrics`);
  const m = new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\d+)`, 'm').exec(await res.text());
  return m ? Number(m[1]) : 0;
}

function forged(hub: TestHub): string {
  return createSasToken(hubResource(hub.hub.hostName), Buffer.alloc(32, 9).toString('base64'), nowSeconds() + 600, 'service');
}

function serviceToken(hub: TestHub): string {
  return createSasToken(
    hubResource(hub.hub.hostName),
    parseConnectionString(hub.serviceString).sharedAccessKey,
    nowSeconds() + 600,
    'service',
  );
}

async function hub(o: Partial<HubStartOptions>, logLines?: Array<{ fields: object; msg: string }>): Promise<TestHub> {
  const logger = { info() {}, error() {}, warn: (fields: object, msg?: string) => logLines?.push({ fields, msg: msg ?? '' }) };
  th = await startTestHub({ ...o, logger });
  return th;
}

describe('hub admission', () => {
  it('has documented defaults', () => {
    expect([DEFAULT_HEADERS_TIMEOUT_MS, DEFAULT_REQUEST_TIMEOUT_MS, DEFAULT_IDLE_TIMEOUT_MS]).toEqual([10_000, 30_000, 10_000]);
    expect([DEFAULT_MAX_CONNECTIONS, DEFAULT_REFUSALS_PER_ADDRESS, DEFAULT_REFUSAL_WINDOW_MS, DEFAULT_REFUSAL_LOG_LINES]).toEqual([
      10_000, 30, 10_000, 10,
    ]);
  });

  it('idleTimeoutMs: a connection that sends nothing is closed', async () => {
    const h = await hub({ idleTimeoutMs: 200 });
    const s = await connect(h.hub.port);
    await closed(s);
    expect(await metric(h, 'devstreams_refused_total{reason="idle_timeout"}')).toBe(1);
  });

  it('headersTimeoutMs: headers that never end get 408 ERR_REQUEST_TIMEOUT and a close', async () => {
    const h = await hub({ headersTimeoutMs: 300, idleTimeoutMs: 60_000 });
    const s = await connect(h.hub.port);
    let answer = '';
    s.on('data', (c: Buffer) => (answer += c.toString('latin1')));
    s.write('POST /twins/x/streams/y HTTP/1.1\r\nHost: h\r\n'); // never the blank line
    await closed(s);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toContain('"code":"ERR_REQUEST_TIMEOUT"');
    expect(await metric(h, 'devstreams_refused_total{reason="request_timeout"}')).toBe(1);
  });

  it('a stream request waiting for its device is not cut by the idle timeout', async () => {
    const h = await hub({ idleTimeoutMs: 200 });
    const cs = parseConnectionString(h.addDevice('dev-slow'));
    const token = createSasToken(deviceResource(h.hub.hostName, 'dev-slow'), cs.sharedAccessKey, nowSeconds() + 600);
    const ws = new WebSocket(`ws://127.0.0.1:${h.hub.port}/devices/dev-slow/control`, { headers: { authorization: token } });
    ws.on('error', () => {});
    await new Promise<void>((r) => ws.once('open', () => r()));
    try {
      // The device never answers: the request waits its full second, well past the idle timeout.
      const r = await httpCall(h.hub.port, 'POST', '/twins/dev-slow/streams/ssh', {
        authorization: serviceToken(h),
        'iothub-streaming-response-timeout-in-seconds': '1',
      });
      expect([r.status, r.body?.code]).toEqual([504, 'ERR_STREAM_TIMEOUT']);
      // And the device's control socket outlived it too.
      expect(ws.readyState).toBe(WebSocket.OPEN);
    } finally {
      ws.terminate();
    }
  });

  it('maxConnections: one more connection gets 503 ERR_HUB_UNAVAILABLE; a slot freed is usable again', async () => {
    const h = await hub({ maxConnections: 2, idleTimeoutMs: 60_000 });
    const a = await connect(h.hub.port);
    await connect(h.hub.port);
    const refused = await rawBytes(h.hub.port, 'GET /healthz HTTP/1.1\r\nHost: h\r\n\r\n');
    expect(refused).toMatch(/^HTTP\/1\.1 503 /);
    expect(refused).toContain('"code":"ERR_HUB_UNAVAILABLE"');
    a.destroy();
    // The hub frees the slot when it sees the close: ask until it has (a refused ask holds no slot).
    let answer = '';
    for (let i = 0; i < 100 && !answer.startsWith('HTTP/1.1 200 '); i++)
      answer = await rawBytes(h.hub.port, 'GET /healthz HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('refusalsPerAddress: past it, a forged token gets 429 without a registry re-read, until the window ends', async () => {
    const h = await hub({ refusalsPerAddress: 5, refusalWindowMs: 1000 });
    for (let i = 0; i < 5; i++)
      expect((await httpCall(h.hub.port, 'POST', '/twins/d/streams/s', { authorization: forged(h) })).status).toBe(401);
    const limited = await httpCall(h.hub.port, 'POST', '/twins/d/streams/s', { authorization: forged(h) });
    expect([limited.status, limited.body?.code]).toEqual([429, 'ERR_RATE_LIMITED']);
    expect(await metric(h, 'devstreams_refused_total{reason="address_limit"}')).toBeGreaterThanOrEqual(1);
    // About time passing: the 1 s refusal window must end (no event marks it).
    await new Promise((r) => setTimeout(r, 1100));
    expect((await httpCall(h.hub.port, 'POST', '/twins/d/streams/s', { authorization: forged(h) })).status).toBe(401);
  });

  it('refusalsPerAddress: a valid token from an address past its limit still gets in (a NAT or proxy shares it)', async () => {
    const h = await hub({ refusalsPerAddress: 5, refusalWindowMs: 60_000 });
    const cs = parseConnectionString(h.addDevice('dev-nat'));
    for (let i = 0; i < 8; i++) await httpCall(h.hub.port, 'POST', '/twins/d/streams/s', { authorization: forged(h) });
    expect((await httpCall(h.hub.port, 'POST', '/twins/d/streams/s', { authorization: forged(h) })).status).toBe(429);
    // A service's valid token: checked, and answered as usual.
    expect((await httpCall(h.hub.port, 'POST', '/twins/d/streams/s', { authorization: serviceToken(h) })).body?.code).toBe(
      'ERR_DEVICE_NOT_FOUND',
    );
    // A device's valid token: its control socket opens.
    const token = createSasToken(deviceResource(h.hub.hostName, 'dev-nat'), cs.sharedAccessKey, nowSeconds() + 600);
    const ws = new WebSocket(`ws://127.0.0.1:${h.hub.port}/devices/dev-nat/control`, { headers: { authorization: token } });
    try {
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
    } finally {
      ws.terminate();
    }
    // An expired token with a valid signature: 401 for what it is, not 429.
    const expired = createSasToken(
      hubResource(h.hub.hostName),
      parseConnectionString(h.serviceString).sharedAccessKey,
      nowSeconds() - 3600,
      'service',
    );
    expect((await httpCall(h.hub.port, 'POST', '/twins/d/streams/s', { authorization: expired })).body?.code).toBe('ERR_AUTH_EXPIRED');
  });

  it('addressKey: IPv6 addresses count per /64, IPv4-mapped ones as their IPv4 address', () => {
    expect(addressKey('127.0.0.1')).toBe('127.0.0.1');
    expect(addressKey('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(addressKey('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8:1:2:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0db8:0001:0002:ffff::9')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('2001:db8:1:3::1')).not.toBe(addressKey('2001:db8:1:2::1'));
  });

  it('refusal logs are sampled: a burst of forged tokens gives a few lines, the next line sums up the rest, /metrics counts all', async () => {
    const lines: Array<{ fields: object; msg: string }> = [];
    const h = await hub({ refusalsPerAddress: 0, refusalLogLines: 3, refusalWindowMs: 1000 }, lines);
    const started = performance.now();
    for (let i = 0; i < 50; i++) await httpCall(h.hub.port, 'POST', '/twins/d/streams/s', { authorization: forged(h) });
    const windows = Math.ceil((performance.now() - started) / 1000) + 1;
    const burst = lines.filter((l) => l.msg === 'refused credentials').length;
    // At most 3 lines per window of 1 s, however slow the machine (a slow one spans more windows).
    expect(burst).toBeLessThanOrEqual(Math.min(49, 3 * windows));
    // About time passing: the 1 s refusal window must end (no event marks it).
    await new Promise((r) => setTimeout(r, 1100));
    await httpCall(h.hub.port, 'POST', '/twins/d/streams/s', { authorization: forged(h) });
    const refusedLines = lines.filter((l) => l.msg === 'refused credentials');
    // Every refusal is either a line or counted in the next line's `suppressed`.
    const suppressed = refusedLines.reduce((n, l) => n + ((l.fields as { suppressed?: number }).suppressed ?? 0), 0);
    expect(refusedLines.length + suppressed).toBe(51);
    expect(refusedLines.at(-1)!.fields).toMatchObject({ code: 'ERR_AUTH_INVALID' });
    expect(await metric(h, 'devstreams_auth_failures_total{endpoint="twins",code="ERR_AUTH_INVALID"}')).toBe(51);
  });
});
