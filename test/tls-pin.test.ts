/**
 * Pinning the hub's certificate in the connection string (HubCertSha256): a hub with
 * --tls-self-signed prints its fingerprint, registry strings carry it, a device proxy and a
 * service proxy trust the hub by it with no --ca, and a hub showing a different certificate is
 * refused with ERR_HUB_CERT_MISMATCH before any request is sent.
 */
import { X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatConnectionString, parseConnectionString } from '../src/auth/index.js';
import { ensureBuilt, runCli, startCli, type CliProcess } from './helpers/cli-process.js';
import { fetchPinnedCertificate } from '../src/transport/index.js';
import { describeHubConnectError } from '../src/sdk/connect-errors.js';

const sha256Of = (pemPath: string): string => new X509Certificate(readFileSync(pemPath)).fingerprint256.replace(/:/g, '').toLowerCase();

describe('connection string field HubCertSha256', () => {
  it('accepts the openssl form (colons, upper case), formats it canonically and needs TLS', () => {
    const hex = `${'AB:'.repeat(31)}AB`;
    const cs = parseConnectionString(
      `HostName=hub:8443;SharedAccessKeyName=service;SharedAccessKey=${Buffer.alloc(32, 1).toString('base64')};HubCertSha256=${hex}`,
    );
    expect(cs.hubCertSha256).toBe('ab'.repeat(32));
    expect(formatConnectionString(cs)).toMatch(/;HubCertSha256=(ab){32}$/);
    expect(() =>
      parseConnectionString(`HostName=hub;DeviceId=d;SharedAccessKey=${Buffer.alloc(32, 1).toString('base64')};HubCertSha256=abc`),
    ).toThrow(/HubCertSha256 is not a SHA-256/);
    expect(() =>
      parseConnectionString(
        `HostName=hub;DeviceId=d;SharedAccessKey=${Buffer.alloc(32, 1).toString('base64')};Transport=ws;HubCertSha256=${'ab'.repeat(32)}`,
      ),
    ).toThrow(/cannot go with Transport=ws/);
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
      service = startCli(
        [
          'service-proxy',
          '--connection-string-file',
          join(dir, 'service.cs'),
          '--device-id',
          'dev-pin',
          '--forward',
          '0:127.0.0.1:9',
          '--eager',
        ],
        env(),
      );
      await service.waitFor('"state":"open"');
    } finally {
      await service?.stop();
      await device.stop();
    }
  });

  it('refuses to pin a CA-issued certificate: in registry strings, and when a string pins one', async () => {
    // A CA and a leaf it issued for 127.0.0.1.
    const ca = join(dir, 'ca');
    mkdirSync(ca);
    const run = (args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore', cwd: ca });
    run([
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '1',
      '-subj',
      '/CN=devstreams test CA',
    ]);
    run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'leaf.key', '-out', 'leaf.csr', '-subj', '/CN=127.0.0.1']);
    writeFileSync(join(ca, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n');
    run([
      'x509',
      '-req',
      '-in',
      'leaf.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'leaf.pem',
      '-days',
      '1',
      '-extfile',
      'ext.cnf',
    ]);
    const r = runCli(['registry', 'add', 'dev-ca-pin', '--data', join(dir, 'hub'), '--hub-cert', join(ca, 'leaf.pem')]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('ERR_CONFIG');
    expect(r.stderr).toContain('not self-signed');
    // A string that pins one anyway (written by hand, or by an older version) fails at once with
    // the same words instead of retrying forever on a verification that can never pass.
    const server = tls.createServer({ key: readFileSync(join(ca, 'leaf.key')), cert: readFileSync(join(ca, 'leaf.pem')) }, (s) =>
      s.destroy(),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    try {
      const port = (server.address() as AddressInfo).port;
      await expect(fetchPinnedCertificate(`127.0.0.1:${port}`, sha256Of(join(ca, 'leaf.pem')))).rejects.toMatchObject({
        code: 'ERR_CONFIG',
        message: expect.stringContaining('not self-signed'),
      });
      // And a client given that leaf as its only CA (what a pin made of it) is told about the pin.
      const err = await new Promise<Error>((resolve) => {
        const c = tls.connect({ host: '127.0.0.1', port, ca: readFileSync(join(ca, 'leaf.pem')) }, () => resolve(new Error('connected')));
        c.once('error', resolve);
      });
      expect(describeHubConnectError(`127.0.0.1:${port}`, err)).toContain('HubCertSha256');
    } finally {
      server.close();
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
