/**
 * Secrets off the command line: `registry ... --out FILE` writes mode 600 (also over an existing
 * 644 file), proxies take `--connection-string-file` (and DEVSTREAMS_CONNECTION_STRING_FILE), and
 * a secret file others can read gets a warning naming the fix.
 */
import { chmodSync, linkSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, runCli, startCli, type CliProcess } from './helpers/cli-process.js';

describe('secret files', () => {
  let dir: string;
  let hub: CliProcess;
  const env = (): NodeJS.ProcessEnv => ({ DEVSTREAMS_HOME: join(dir, 'home') });

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'devstreams-secrets-'));
    hub = startCli(['hub', '--listen', '127.0.0.1:0', '--data', join(dir, 'hub')], env());
    await hub.waitFor('hub ready');
  }, 30_000);

  afterAll(async () => {
    await hub?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('registry --out writes the string with mode 600, also over an existing world-readable file', () => {
    const out = join(dir, 'device.cs');
    writeFileSync(out, 'old\n', { mode: 0o644 });
    chmodSync(out, 0o644);
    const r = runCli(['registry', 'add', 'dev-secret', '--data', join(dir, 'hub'), '--out', out]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(readFileSync(out, 'utf8')).toMatch(/^HostName=.*DeviceId=dev-secret;SharedAccessKey=/);
    const s = runCli(['registry', 'service-string', '--data', join(dir, 'hub'), '--out', join(dir, 'sub', 'service.cs')]);
    expect(s.status).toBe(0);
    expect(statSync(join(dir, 'sub', 'service.cs')).mode & 0o777).toBe(0o600);
  });

  it('registry --out replaces the file instead of writing into it: the old inode (another link to it) never gets the secret', () => {
    const out = join(dir, 'linked.cs');
    const other = join(dir, 'other-link.cs');
    writeFileSync(out, 'old\n', { mode: 0o644 });
    chmodSync(out, 0o644);
    // Another name for the same inode: what a file owned by someone else, or a 0644 file read
    // during the write, would see.
    linkSync(out, other);
    const r = runCli(['registry', 'add', 'dev-linked', '--data', join(dir, 'hub'), '--out', out]);
    expect(r.status).toBe(0);
    expect(readFileSync(out, 'utf8')).toMatch(/DeviceId=dev-linked;SharedAccessKey=/);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    expect(readFileSync(other, 'utf8')).toBe('old\n');
    // No temporary file is left beside it.
    expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('a device proxy runs from --connection-string-file and warns when others can read the file', async () => {
    const file = join(dir, 'open.cs');
    expect(runCli(['registry', 'add', 'dev-open', '--data', join(dir, 'hub'), '--out', file]).status).toBe(0);
    chmodSync(file, 0o644);
    const device = startCli(['device-proxy', '--connection-string-file', file, '--allow', '127.0.0.1:9', '--accept-any-service'], env());
    try {
      await device.waitFor('device proxy ready');
      expect(device.stderr()).toContain(`${file} holds a secret and is readable by others (mode 644); chmod 600 ${file}`);
      expect(device.stderr()).not.toContain('SharedAccessKey=');
    } finally {
      await device.stop();
    }
  });

  it('takes the file from DEVSTREAMS_CONNECTION_STRING_FILE without a warning when it is 600', async () => {
    const file = join(dir, 'env.cs');
    expect(runCli(['registry', 'add', 'dev-env', '--data', join(dir, 'hub'), '--out', file]).status).toBe(0);
    const device = startCli(['device-proxy', '--allow', '127.0.0.1:9', '--accept-any-service'], {
      ...env(),
      DEVSTREAMS_CONNECTION_STRING_FILE: file,
    });
    try {
      await device.waitFor('device proxy ready');
      expect(device.stderr()).toContain('dev-env');
      expect(device.stderr()).not.toContain('readable by others');
    } finally {
      await device.stop();
    }
  });

  it('refuses both flags at once, and names a missing file', () => {
    const both = runCli(['device-proxy', '--connection-string', 'x', '--connection-string-file', join(dir, 'device.cs')], env());
    expect(both.status).toBe(2);
    expect(both.stderr).toContain('give one of --connection-string and --connection-string-file');
    const missing = runCli(
      ['service-proxy', '--connection-string-file', join(dir, 'nope.cs'), '--device-id', 'd', '--forward', '0:127.0.0.1:9'],
      env(),
    );
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain(`cannot read connection string file ${join(dir, 'nope.cs')}: ENOENT`);
  });
});
