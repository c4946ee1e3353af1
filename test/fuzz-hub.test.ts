// Fuzzing every hub endpoint: random methods, paths, headers and bodies over HTTP; random and
// mutated raw requests; random WebSocket upgrades; random frames on control and streaming
// sockets. The hub must always answer an HTTP status with a JSON {code} (or close cleanly),
// never crash, and keep serving (/healthz OK after every run).
import net from 'node:net';
import fc from 'fast-check';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSasToken, deviceResource, hubResource, nowSeconds, parseConnectionString } from '../src/auth/index.js';
import { startTestHub, type TestHub } from './helpers/hub.js';
import { httpCall, tryUpgrade, upgradeRequest, type RawAnswer } from './helpers/raw.js';
import { FUZZ_TIMEOUT_MS, fuzzParams, mutate, mutationArb } from './helpers/fuzz.js';

let th: TestHub;
let port: number;
let tokens: { device: string; service: string; owner: string };

beforeAll(async () => {
  // Thousands of forged requests from one address: the per-address refusal limit (limits.test.ts) would turn them into 429s.
  th = await startTestHub({ streamPairTimeoutMs: 2000, refusalsPerAddress: 0 });
  port = th.hub.port;
  const dev = parseConnectionString(th.addDevice('dev-a'));
  const later = nowSeconds() + 3600;
  const host = th.hub.hostName;
  tokens = {
    device: createSasToken(deviceResource(host, 'dev-a'), dev.sharedAccessKey, later),
    service: createSasToken(hubResource(host), parseConnectionString(th.serviceString).sharedAccessKey, later, 'service'),
    owner: createSasToken(hubResource(host), parseConnectionString(th.ownerString).sharedAccessKey, later, 'owner'),
  };
});
afterAll(async () => {
  await th.close();
});

async function healthy(): Promise<void> {
  const r = await httpCall(port, 'GET', '/healthz');
  expect(r.status).toBe(200);
}

/** Printable ASCII without control characters: what Node's HTTP client lets through in headers. */
const headerText = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 80 });
const segmentArb = fc.oneof(
  fc.constantFrom(
    '',
    'dev-a',
    'dev-b',
    'devices',
    'twins',
    'streams',
    'control',
    'rotate-key',
    'healthz',
    'metrics',
    '%',
    '%ZZ',
    '%E0%A4%A',
    '..',
    'a'.repeat(300),
  ),
  fc.string({ unit: fc.constantFrom(...'abc-._~%2F0A?#&='.split('')), maxLength: 20 }),
);
const pathArb = fc.oneof(
  fc.constantFrom(
    '/healthz',
    '/metrics',
    '/devices',
    '/devices/dev-a',
    '/devices/dev-a/control',
    '/devices/dev-a/rotate-key',
    '/twins/dev-a/streams/ssh',
    '/streams/abc',
  ),
  fc.array(segmentArb, { minLength: 1, maxLength: 6 }).map((s) => `/${s.join('/')}`),
);
const authArb = (): fc.Arbitrary<string | undefined> =>
  fc.oneof(
    fc.constant(undefined),
    fc.constantFrom('device', 'service', 'owner').map((k) => tokens[k as keyof typeof tokens]),
    fc.constantFrom('device', 'service', 'owner').chain((k) =>
      fc.array(mutationArb, { minLength: 1, maxLength: 2 }).map((m) =>
        mutate(Buffer.from(tokens[k as keyof typeof tokens]), m)
          .toString('latin1')
          .replace(/[^\x20-\x7e]/g, 'x'),
      ),
    ),
    headerText,
    headerText.map((t) => `Bearer ${t}`),
  );

/** Any answer to a request: either no status (connection closed) or a status with a JSON code when >= 400. */
function checkAnswer(status: number, body: { code?: string } | undefined, what: string): void {
  expect(status, what).toBeGreaterThanOrEqual(100);
  expect(status, what).toBeLessThan(600);
  if (status >= 400) expect(typeof body?.code, `${what} -> ${status}`).toBe('string');
  expect(status, what).not.toBe(500); // an internal error is a bug: some input was not handled
}

describe('fuzz: hub HTTP endpoints', () => {
  it(
    'random methods, paths, headers and bodies: a status with JSON {code}; the hub keeps serving',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          // No HEAD: its answers have no body, so there is no JSON {code} to check.
          fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'),
          pathArb,
          authArb(),
          fc.option(fc.oneof(fc.constantFrom('0', '1', '300', '301', '-1', 'soon', '1e3', ' 5'), headerText), { nil: undefined }),
          fc.option(fc.oneof(fc.json(), fc.string({ maxLength: 200 }), fc.constant('x'.repeat(20_000))), { nil: undefined }),
          async (method, path, auth, timeout, body) => {
            // Creating or deleting dev-a would change what other runs see; owner writes go to other ids.
            if ((method === 'DELETE' || method === 'POST') && path.startsWith('/devices/dev-a')) path = path.replace('dev-a', 'dev-z');
            const headers: Record<string, string> = {};
            if (auth !== undefined) headers.authorization = auth;
            if (timeout !== undefined) headers['iothub-streaming-response-timeout-in-seconds'] = timeout;
            const r = await httpCall(port, method, path, headers, method === 'GET' ? undefined : body).catch((e: Error) => ({
              status: -1,
              body: { code: e.message },
              upgraded: false,
            }));
            if (r.status === -1) {
              // Only acceptable as the hub closing after a 413 while we were still sending.
              expect(body?.length ?? 0, `${method} ${path}: ${r.body?.code}`).toBeGreaterThan(16 * 1024);
              return;
            }
            checkAnswer(r.status, r.body, `${method} ${path}`);
          },
        ),
        fuzzParams(400, 0.2),
      );
      await healthy();
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    'mutated raw HTTP requests: an HTTP answer or a clean close, never a hang',
    async () => {
      const base = [
        `GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
        `POST /twins/dev-a/streams/ssh HTTP/1.1\r\nHost: x\r\nAuthorization: ${tokens.service}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
        `PUT /devices/new-x HTTP/1.1\r\nHost: x\r\nAuthorization: ${tokens.owner}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`,
        `GET /devices/dev-a/control HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: ${tokens.device}\r\n\r\n`,
        `GET /streams/abcdefghijklmnop HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer abcdefghijklmnopqrstuvwx\r\n\r\n`,
      ];
      await fc.assert(
        fc.asyncProperty(fc.integer({ min: 0, max: base.length - 1 }), fc.array(mutationArb, { maxLength: 4 }), async (i, mutations) => {
          const reply = await rawExchange(mutate(Buffer.from(base[i]!, 'latin1'), mutations));
          expect(reply.timedOut, 'hub kept a half-closed connection open').toBe(false);
          if (reply.text.length > 0) {
            expect(reply.text).toMatch(/^HTTP\/1\.1 \d{3} /);
            const status = Number(reply.text.slice(9, 12));
            expect(status).not.toBe(500);
            // A refused request carries a JSON body with a code (a 101 switches protocols instead).
            if (status >= 400) expect(reply.text).toMatch(/"code":"ERR_[A-Z_]+"/);
          }
        }),
        fuzzParams(300, 0.2),
      );
      await healthy();
    },
    FUZZ_TIMEOUT_MS,
  );
});

/** Writes `bytes`, half-closes, and collects the answer until the hub closes (bounded). */
function rawExchange(bytes: Buffer, timeoutMs = 4000): Promise<{ text: string; timedOut: boolean }> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let timedOut = false;
    const t = setTimeout(() => {
      timedOut = true;
      s.destroy();
    }, timeoutMs);
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(t);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), timedOut });
    });
    s.end(bytes);
  });
}

/** Random WebSocket frames: sometimes well-formed (masked, any opcode), sometimes raw bytes. */
const wsFrameArb = fc.oneof(
  fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)),
  fc
    .record({
      fin: fc.boolean(),
      rsv: fc.integer({ min: 0, max: 7 }),
      opcode: fc.integer({ min: 0, max: 15 }),
      masked: fc.boolean(),
      payload: fc.uint8Array({ maxLength: 200 }),
      lenKind: fc.constantFrom('exact', 'short', 'huge'),
    })
    .map(({ fin, rsv, opcode, masked, payload, lenKind }) => {
      const p = Buffer.from(payload);
      const head: number[] = [(fin ? 0x80 : 0) | (rsv << 4) | opcode];
      const len = lenKind === 'exact' ? p.length : lenKind === 'short' ? p.length + 50 : 0x7fffffff;
      let ext = Buffer.alloc(0);
      if (len < 126) head.push((masked ? 0x80 : 0) | len);
      else if (len < 65536) {
        head.push((masked ? 0x80 : 0) | 126);
        ext = Buffer.alloc(2);
        ext.writeUInt16BE(len);
      } else {
        head.push((masked ? 0x80 : 0) | 127);
        ext = Buffer.alloc(8);
        ext.writeUInt32BE(len, 4);
      }
      const mask = masked ? Buffer.from([1, 2, 3, 4]) : Buffer.alloc(0);
      const body = masked ? Buffer.from(p.map((b, i) => b ^ mask[i % 4]!)) : p;
      return Buffer.concat([Buffer.from(head), ext, mask, body]);
    }),
);

/** Upgrades by hand, writes `frames`, half-closes; resolves once the hub closes (bounded). */
function upgradeAndSend(
  path: string,
  auth: string,
  frames: readonly Buffer[],
  timeoutMs = 4000,
): Promise<{ upgraded: boolean; status: number; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const req = upgradeRequest(port, path, { authorization: auth });
    req.on('upgrade', (_res, socket) => {
      const t = setTimeout(() => {
        socket.destroy();
        resolve({ upgraded: true, status: 101, closed: false });
      }, timeoutMs);
      socket.on('error', () => {});
      socket.on('close', () => {
        clearTimeout(t);
        resolve({ upgraded: true, status: 101, closed: true });
      });
      socket.resume();
      for (const f of frames) socket.write(f);
      socket.end();
    });
    req.on('response', (res) => {
      res.resume();
      resolve({ upgraded: false, status: res.statusCode ?? 0, closed: true });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('fuzz: hub WebSocket endpoints', () => {
  it(
    'random upgrade headers: refused with a JSON {code}, or upgraded only with a valid token',
    async () => {
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(
            '/devices/dev-a/control',
            '/devices/dev-b/control',
            '/streams/abcdefghijklmnopqrstuv',
            '/',
            '/devices/%ZZ/control',
          ),
          authArb(),
          fc.dictionary(
            fc.constantFrom(
              'sec-websocket-version',
              'sec-websocket-key',
              'upgrade',
              'connection',
              'sec-websocket-protocol',
              'sec-websocket-extensions',
              'origin',
            ),
            headerText,
            { maxKeys: 3 },
          ),
          async (path, auth, extra) => {
            const headers: Record<string, string> = { ...extra };
            if (auth !== undefined) headers.authorization = auth;
            const r = await tryUpgradeRaw(path, headers);
            if (r.upgraded) {
              expect(path).toBe('/devices/dev-a/control');
              expect(headers.authorization).toBe(tokens.device);
            } else if (r.status !== 0) {
              // The hub's own refusals are JSON; a request that is not an upgrade at all is an HTTP request.
              checkAnswer(r.status, r.body, `upgrade ${path}`);
            }
          },
        ),
        fuzzParams(250, 0.1),
      );
      await healthy();
    },
    FUZZ_TIMEOUT_MS,
  );

  it("regression: a bad Sec-WebSocket-Key/Version behind a valid token gets a JSON 400, not ws's plain text", async () => {
    const bad: Array<Record<string, string>> = [{ 'sec-websocket-version': '' }, { 'sec-websocket-key': 'short' }];
    for (const extra of bad) {
      const r = await tryUpgradeRaw('/devices/dev-a/control', { authorization: tokens.device, ...extra });
      expect([r.status, r.body?.code]).toEqual([400, 'ERR_BAD_REQUEST']);
    }
  });

  it(
    'random frames on an authenticated control socket: the hub closes it cleanly and keeps serving',
    async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(wsFrameArb, { minLength: 1, maxLength: 5 }), async (frames) => {
          const r = await upgradeAndSend('/devices/dev-a/control', tokens.device, frames);
          expect(r.upgraded).toBe(true);
          expect(r.closed, 'hub kept a half-closed control socket').toBe(true);
        }),
        fuzzParams(80, 0.05),
      );
      await healthy();
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    'random JSON-ish messages on a control socket: closed with 4400/1009 or answered; the hub keeps serving',
    async () => {
      const msgArb = fc.oneof(
        fc.json().map((s) => ({ data: s, binary: false })),
        fc
          .record({
            type: fc.constantFrom('streamResponse', 'renew', 'x'),
            requestId: fc.anything(),
            accept: fc.anything(),
            token: fc.anything(),
            reason: fc.anything(),
          })
          .map((o) => ({ data: JSON.stringify(o), binary: false })),
        fc.uint8Array({ maxLength: 100 }).map((b) => ({ data: Buffer.from(b), binary: true })),
        fc.constant({ data: 'x'.repeat(20 * 1024), binary: false }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(msgArb, { minLength: 1, maxLength: 4 }), async (messages) => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/devices/dev-a/control`, { headers: { authorization: tokens.device } });
          ws.on('error', () => {});
          await new Promise<void>((resolve, reject) => {
            ws.once('open', () => resolve());
            ws.once('unexpected-response', () => reject(new Error('refused')));
          });
          const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
          for (const m of messages) ws.send(m.data, { binary: m.binary });
          const timer = setTimeout(() => ws.close(1000), 500); // valid messages leave it open: we close
          const code = await closed;
          clearTimeout(timer);
          expect([1000, 1005, 1006, 1009, 4400, 4401, 4409]).toContain(code);
        }),
        fuzzParams(40, 0.05),
      );
      await healthy();
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    'random frames on a paired streaming socket: the hub closes or relays, and keeps serving',
    async () => {
      // A minimal device on the control socket that accepts every stream and joins it.
      const device = new WebSocket(`ws://127.0.0.1:${port}/devices/dev-a/control`, { headers: { authorization: tokens.device } });
      device.on('error', () => {});
      const deviceSides: WebSocket[] = [];
      device.on('message', (data) => {
        const m = JSON.parse(String(data)) as { requestId: string; url: string; authorizationToken: string };
        device.send(JSON.stringify({ type: 'streamResponse', requestId: m.requestId, accept: true }));
        const side = new WebSocket(m.url, { headers: { authorization: `Bearer ${m.authorizationToken}` } });
        side.on('error', () => {});
        deviceSides.push(side);
      });
      await new Promise<void>((r) => device.once('open', () => r()));
      try {
        await fc.assert(
          fc.asyncProperty(fc.array(wsFrameArb, { minLength: 1, maxLength: 5 }), async (frames) => {
            const ask = await httpCall(port, 'POST', '/twins/dev-a/streams/fuzz', { authorization: tokens.service });
            expect(ask.status).toBe(200);
            const { url, authorizationToken } = ask.body as unknown as { url: string; authorizationToken: string };
            const r = await upgradeAndSend(new URL(url).pathname, `Bearer ${authorizationToken}`, frames);
            expect(r.upgraded).toBe(true);
            expect(r.closed, 'hub kept a half-closed stream socket').toBe(true);
          }),
          fuzzParams(40, 0.05),
        );
      } finally {
        device.close();
        for (const s of deviceSides) s.terminate();
      }
      await healthy();
    },
    FUZZ_TIMEOUT_MS,
  );
});

/** A WebSocket upgrade request with arbitrary headers; status 0 when the hub just closed. */
function tryUpgradeRaw(path: string, headers: Record<string, string>): Promise<RawAnswer> {
  return tryUpgrade(port, path, headers).catch((): RawAnswer => ({ upgraded: false, status: 0, body: undefined }));
}
