import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  parseConnectionString,
  formatConnectionString,
  parseDeviceConnectionString,
  type ConnectionString,
  createSasToken,
  parseSasToken,
  verifySasToken,
  deviceResource,
  hubResource,
  nowSeconds,
} from '../src/auth/index.js';
import { DevstreamsError, hasCode } from '../src/errors.js';

const KEY = Buffer.alloc(32, 7).toString('base64');

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    return e instanceof DevstreamsError ? e.code : 'not-a-devstreams-error';
  }
}

describe('connection strings', () => {
  it('parses device, service and owner strings', () => {
    const d = parseConnectionString(`HostName=hub.example.com;DeviceId=dev-1;SharedAccessKey=${KEY}`);
    expect(d).toMatchObject({ kind: 'device', deviceId: 'dev-1', hostName: 'hub.example.com', transport: 'wss' });
    const s = parseConnectionString(
      `HostName=127.0.0.1:8080;SharedAccessKeyName=service;SharedAccessKey=${KEY};Transport=ws;GatewayHostName=10.0.0.1:443`,
    );
    expect(s).toMatchObject({ kind: 'policy', policy: 'service', transport: 'ws', gatewayHostName: '10.0.0.1:443' });
    expect(parseConnectionString(`HostName=h;SharedAccessKeyName=owner;SharedAccessKey=${KEY}`)).toMatchObject({ policy: 'owner' });
  });

  it('names the bad field', () => {
    const cases: [string, string][] = [
      ['', 'empty'],
      [`DeviceId=d;SharedAccessKey=${KEY}`, 'HostName'],
      [`HostName=h;DeviceId=d`, 'SharedAccessKey'],
      [`HostName=h;DeviceId=d;SharedAccessKey=!!`, 'SharedAccessKey'],
      [`HostName=h;DeviceId=bad id;SharedAccessKey=${KEY}`, 'DeviceId'],
      [`HostName=h;SharedAccessKeyName=no spaces;SharedAccessKey=${KEY}`, 'SharedAccessKeyName'],
      [`HostName=h;DeviceId=d;SharedAccessKey=${KEY};Transport=tcp`, 'Transport'],
      [`HostName=h;DeviceId=d;SharedAccessKey=${KEY};Color=red`, 'Color'],
      [`HostName=h/x;DeviceId=d;SharedAccessKey=${KEY}`, 'HostName'],
      [`HostName=h;HostName=h;DeviceId=d;SharedAccessKey=${KEY}`, 'HostName'],
      [`HostName=h;DeviceId=d;SharedAccessKeyName=service;SharedAccessKey=${KEY}`, 'both'],
    ];
    for (const [text, word] of cases) {
      let err: unknown;
      try {
        parseConnectionString(text);
      } catch (e) {
        err = e;
      }
      expect(hasCode(err, 'ERR_CONNECTION_STRING'), text).toBe(true);
      expect((err as Error).message, text).toContain(word);
    }
    expect(codeOf(() => parseDeviceConnectionString(`HostName=h;SharedAccessKeyName=service;SharedAccessKey=${KEY}`))).toBe(
      'ERR_CONNECTION_STRING',
    );
  });

  it('round-trips any valid string (property)', () => {
    const host = fc
      .tuple(fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,20}$/), fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }))
      .map(([h, p]) => (p === undefined ? h : `${h}:${p}`));
    const key = fc.uint8Array({ minLength: 16, maxLength: 64 }).map((b) => Buffer.from(b).toString('base64'));
    const common = fc.record({
      hostName: host,
      sharedAccessKey: key,
      transport: fc.constantFrom('ws' as const, 'wss' as const),
      gatewayHostName: fc.option(host, { nil: undefined }),
    });
    const cs: fc.Arbitrary<ConnectionString> = fc.oneof(
      fc
        .tuple(common, fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,30}$/))
        .map(([c, id]) => ({ kind: 'device' as const, deviceId: id, ...c })),
      fc
        .tuple(common, fc.constantFrom('service' as const, 'owner' as const))
        .map(([c, p]) => ({ kind: 'policy' as const, policy: p, ...c })),
    );
    fc.assert(
      fc.property(cs, (c) => {
        const clean = JSON.parse(JSON.stringify(c)) as ConnectionString;
        expect(parseConnectionString(formatConnectionString(clean))).toEqual(clean);
      }),
      { numRuns: 300 },
    );
  });

  it('never throws anything but ERR_CONNECTION_STRING on arbitrary input (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (s) => {
        const c = codeOf(() => parseConnectionString(s));
        expect(c === undefined || c === 'ERR_CONNECTION_STRING').toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('SAS tokens', () => {
  it('creates the IoT Hub format and verifies it', () => {
    const se = nowSeconds() + 60;
    const t = createSasToken(deviceResource('Hub.Example:443', 'dev-1'), KEY, se);
    expect(t).toMatch(/^SharedAccessSignature sr=hub\.example%3A443%2Fdevices%2Fdev-1&sig=[^&]+&se=\d+$/);
    const p = parseSasToken(t);
    expect(p.resource).toBe('hub.example:443/devices/dev-1');
    expect(() => verifySasToken(p, KEY)).not.toThrow();
    expect(parseSasToken(createSasToken(hubResource('h'), KEY, se, 'service')).keyName).toBe('service');
  });

  it('refuses a forged, expired or malformed token with a code', () => {
    const se = nowSeconds() + 60;
    const other = Buffer.alloc(32, 9).toString('base64');
    expect(codeOf(() => verifySasToken(parseSasToken(createSasToken('h', other, se)), KEY))).toBe('ERR_AUTH_INVALID');
    const old = parseSasToken(createSasToken('h', KEY, nowSeconds() - 120));
    expect(codeOf(() => verifySasToken(old, KEY))).toBe('ERR_AUTH_EXPIRED');
    // within clock skew: still valid
    expect(codeOf(() => verifySasToken(parseSasToken(createSasToken('h', KEY, nowSeconds() - 5)), KEY))).toBeUndefined();
    // tampered expiry breaks the signature
    const t = createSasToken('h', KEY, se).replace(`se=${se}`, `se=${se + 1000}`);
    expect(codeOf(() => verifySasToken(parseSasToken(t), KEY))).toBe('ERR_AUTH_INVALID');
    for (const bad of [
      '',
      'Bearer x',
      'SharedAccessSignature ',
      'SharedAccessSignature sr=h&se=1',
      'SharedAccessSignature sr=%E0%A4%A&sig=x&se=1',
    ]) {
      expect(
        codeOf(() => parseSasToken(bad)),
        bad,
      ).toBe('ERR_AUTH_INVALID');
    }
  });

  it('round-trips resources and expiries (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 80 }),
        fc.integer({ min: 0, max: 3600 }),
        fc.option(fc.constantFrom('service', 'owner'), { nil: undefined }),
        (resource, ttl, skn) => {
          const se = nowSeconds() + ttl;
          const p = parseSasToken(createSasToken(resource, KEY, se, skn));
          expect(p.resource).toBe(resource);
          expect(p.expiry).toBe(se);
          expect(p.keyName).toBe(skn);
          verifySasToken(p, KEY);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('never throws anything but ERR_AUTH_INVALID when parsing arbitrary input (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 300 }).map((s) => `SharedAccessSignature ${s}`),
        (s) => {
          const c = codeOf(() => parseSasToken(s));
          expect(c === undefined || c === 'ERR_AUTH_INVALID').toBe(true);
        },
      ),
      { numRuns: 500 },
    );
  });
});
