/**
 * Pinning the hub's certificate in the connection string (HubCertSha256): a hub with
 * --tls-self-signed prints its fingerprint, registry strings carry it, a device proxy and a
 * service proxy trust the hub by it with no --ca, and a hub showing a different certificate is
 * refused with ERR_HUB_CERT_MISMATCH before any request is sent.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatConnectionString, parseConnectionString } from '../src/auth/index.js';
import { ensureBuilt, runCli, startCli, type CliProcess } from './helpers/cli-process.js';

const sha256Of = (pemPath: string): string => new X509Certificate(readFileSync(pemPath)).fingerprint256.replace(/:/g, '').toLowerCase();

describe('connection string field HubCertSha256', () => {
  it('accepts the openssl form (colons, upper case), formats it canonically and needs TLS', () => {
    const hex = 'AB:'.repeat(31) + 'AB';
    const cs = parseConnectionString(`HostName=hub:8443;SharedAccessKeyName=service;SharedAccessKey=${Buffer.alloc(32, 1).toString('base64')};HubCertSha256=${hex}`);
    expect(cs.hubCertSha256).toBe('ab'.repeat(32));
    expect(formatConnectionString(cs)).toMatch(/;HubCertSha256=(ab){32}$/);
    expect(() => parseConnectionString(`HostName=hub;DeviceId=d;SharedAccessKey=${Buffer.alloc(32, 1).toString('base64')};HubCertSha256=abc`)).toThrow(/HubCertSha256 is not a SHA-256/);
    expect(() => parseConnectionString(`HostName=hub;DeviceId=d;SharedAccessKey=${Buffer.alloc(32, 1).toString('base64')};Transport=ws;HubCertSha256=${'ab'.repeat(32)}`)).toThrow(/cannot go with Transport=ws/);
  });
});

describe('a self-signed hub trusted by the fingerprint in the string', () => {
  let dir: string;
  let hub: CliProcess;
  let other: CliProcess;
  const env = (): NodeJS.ProcessEnv => ({ DEVSTREAMS_HOME: join(dir, 'home') });

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'devstreams-pin-'));
    hub = startCli(['hub', '--listen', '127.0.0.1:0', '--data', join(dir, 'hub'), '--tls-self-signed'], env());
    await hub.waitFor('hub ready');
    // A second hub with a certificate of its own: what a client pinned to the first must refuse.
    other = startCli(['hub', '--listen', '127.0.0.1:0', '--data', join(dir, 'other'), '--tls-self-signed'], env());
    await other.waitFor('hub ready');
  }, 30_000);

  afterAll(async () => {
    await hub?.stop();
    await other?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the fingerprint at start and in the strings registry writes', () => {
    const pin = sha256Of(join(dir, 'hub', 'tls', 'hub-cert.pem'));
    expect(hub.stderr()).toContain(`"certSha256":"${pin}"`);
    expect(runCli(['registry', 'add', 'dev-pin', '--data', join(dir, 'hub'), '--out', join(dir, 'device.cs')]).status).toBe(0);
    const service = runCli(['registry', 'service-string', '--data', join(dir, 'hub')]);
    expect(readFileSync(join(dir, 'device.cs'), 'utf8')).toContain(`;HubCertSha256=${pin}`);
    expect(service.stdout).toContain(`;HubCertSha256=${pin}`);
    writeFileSync(join(dir, 'service.cs'), service.stdout, { mode: 0o600 });
  });

  it('lets a device proxy and a service proxy in without --ca', async () => {
    expect(runCli(['key', 'authorize', runCli(['key', 'show'], env()).stdout.trim(), '--name', 'pin-test'], env()).status).toBe(0);
    const device = startCli(['device-proxy', '--connection-string-file', join(dir, 'device.cs'), '--allow', '127.0.0.1:9'], env());
    let service: CliProcess | undefined;
    try {
      await device.waitFor('device proxy ready');
      expect(device.stderr()).toContain('control socket connected');
      service = startCli(['service-proxy', '--connection-string-file', join(dir, 'service.cs'), '--device-id', 'dev-pin', '--forward', '0:127.0.0.1:9', '--eager'], env());
      await service.waitFor('"state":"open"');
    } finally {
      await service?.stop();
      await device.stop();
    }
  });

  it('refuses a hub that shows a different certificate', () => {
    const otherHost = /"hostName":"([^"]+)"/.exec(other.stderr())![1]!;
    const pinned = readFileSync(join(dir, 'device.cs'), 'utf8').replace(/HostName=[^;]+/, `HostName=${otherHost}`);
    writeFileSync(join(dir, 'elsewhere.cs'), pinned, { mode: 0o600 });
    const r = runCli(['device-proxy', '--connection-string-file', join(dir, 'elsewhere.cs'), '--allow', '127.0.0.1:9'], env());
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('ERR_HUB_CERT_MISMATCH');
    expect(r.stderr).toContain(sha256Of(join(dir, 'other', 'tls', 'hub-cert.pem')));
    // The other hub never saw a request: the probe sends nothing, and the mismatch stops before any.
    expect(other.stderr()).not.toContain('dev-pin');
  });
});
