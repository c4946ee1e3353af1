/**
 * `--config FILE` (TOML, keys are the long flag names) for hub, device-proxy and service-proxy:
 * the file configures a real run, a flag on the command line wins over the file, and an unknown
 * key or a bad value is refused naming the key.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, runCli, startCli, type CliProcess } from './helpers/cli-process.js';

describe('--config FILE', () => {
  let dir: string;
  let hub: CliProcess;
  const env = (): NodeJS.ProcessEnv => ({ DEVSTREAMS_HOME: join(dir, 'home') });
  const file = (name: string, lines: string[]): string => {
    const path = join(dir, name);
    writeFileSync(path, `${lines.join('\n')}\n`, { mode: 0o600 });
    return path;
  };

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'devstreams-config-'));
    // The hub runs from its file alone: listen (a required flag), data, a limit.
    hub = startCli(
      [
        'hub',
        '--config',
        file('hub.toml', ['listen = "127.0.0.1:0"', `data = "${join(dir, 'hub')}"`, 'stream-rate = 50', 'log-level = "debug"']),
      ],
      env(),
    );
    await hub.waitFor('hub ready');
    expect(runCli(['registry', 'add', 'dev-config', '--data', join(dir, 'hub'), '--out', join(dir, 'device.cs')]).status).toBe(0);
    expect(runCli(['registry', 'service-string', '--data', join(dir, 'hub'), '--out', join(dir, 'service.cs')]).status).toBe(0);
  }, 30_000);

  afterAll(async () => {
    await hub?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs a device proxy from the file, and a flag on the command line wins over it', async () => {
    const config = file('device.toml', [
      `connection-string-file = "${join(dir, 'device.cs')}"`,
      'allow = ["127.0.0.1:22", "10.0.0.0/24:502"]',
      'accept-any-service = true',
      'max-sessions = 4',
    ]);
    const fromFile = startCli(['device-proxy', '--config', config], env());
    try {
      await fromFile.waitFor('device proxy ready');
      expect(fromFile.stderr()).toContain('127.0.0.1:22');
      expect(fromFile.stderr()).toContain('10.0.0.0/24:502');
      expect(fromFile.stderr()).toContain('--accept-any-service');
    } finally {
      await fromFile.stop();
    }
    const overridden = startCli(['device-proxy', '--config', config, '--allow', '127.0.0.1:8080'], env());
    try {
      await overridden.waitFor('device proxy ready');
      expect(overridden.stderr()).toContain('127.0.0.1:8080');
      expect(overridden.stderr()).not.toContain('127.0.0.1:22');
    } finally {
      await overridden.stop();
    }
  });

  it('runs a service proxy from the file (forwards, device id, resume = false)', async () => {
    const config = file('service.toml', [
      `connection-string-file = "${join(dir, 'service.cs')}"`,
      'device-id = "dev-config"',
      'forward = ["0:127.0.0.1:22"]',
      'resume = false',
    ]);
    const service = startCli(['service-proxy', '--config', config, '--socks', '0'], env());
    try {
      await service.waitFor('service proxy ready');
      expect(service.stdout()).toMatch(/^forward 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:22$/m);
      expect(service.stdout()).toMatch(/^socks 127\.0\.0\.1:\d+$/m);
    } finally {
      await service.stop();
    }
  });

  it('refuses an unknown key, naming it and the keys the command takes', () => {
    const r = runCli(['device-proxy', '--config', file('typo.toml', ['alow = ["127.0.0.1:22"]'])], env());
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('typo.toml: unknown key "alow"; devstreams device-proxy takes:');
    expect(r.stderr).toContain(' allow,');
  });

  it('refuses a bad value naming the key, bad TOML, a list for a single flag and a missing file', () => {
    const badValue = runCli(['hub', '--config', file('bad-listen.toml', ['listen = "nowhere"'])], env());
    expect(badValue.status).toBe(2);
    expect(badValue.stderr).toContain('bad-listen.toml: key "listen": expected HOST:PORT');
    const badToml = runCli(['hub', '--config', file('bad.toml', ['listen = '])], env());
    expect(badToml.status).toBe(2);
    expect(badToml.stderr).toContain('bad.toml: not valid TOML');
    const list = runCli(['service-proxy', '--config', file('list.toml', ['device-id = ["a", "b"]'])], env());
    expect(list.status).toBe(2);
    expect(list.stderr).toContain('key "device-id" takes one value, not a list');
    const missing = runCli(['hub', '--config', join(dir, 'nope.toml')], env());
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain(`cannot read --config ${join(dir, 'nope.toml')}: ENOENT`);
  });
});
