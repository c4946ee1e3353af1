/**
 * The device install: `npm pack`, then `npm install --omit=dev` of the tarball into an empty
 * directory (no TypeScript, no dev dependencies), then `devstreams --version` and a device proxy
 * run from that install against a hub. Dependencies come from the local npm cache when it has
 * them (--prefer-offline; CI's `npm ci` fills it).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, runCli, startCli, type CliProcess } from './helpers/cli-process.js';
import { ROOT as REPO_ROOT } from './helpers/build.js';
import { until } from './helpers/hub.js';

describe('packed tarball installed without dev dependencies', () => {
  let dir: string;
  let tarball: string;
  let bin: string;
  let hub: CliProcess | undefined;
  const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

  beforeAll(() => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'devstreams-install-'));
    // npm test has just built dist/; --ignore-scripts skips prepack's second build.
    const name = execFileSync('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    })
      .trim()
      .split('\n')
      .pop()!;
    tarball = join(dir, name);
    const app = join(dir, 'app');
    execFileSync('mkdir', ['-p', app]);
    execFileSync('npm', ['install', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], {
      cwd: app,
      encoding: 'utf8',
      timeout: 180_000,
    });
    bin = join(app, 'node_modules', '.bin', 'devstreams');
  }, 200_000);

  afterAll(async () => {
    await hub?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('ships only what runs: dist/src, no TypeScript, no tests', () => {
    const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n');
    expect(files).toContain('package/dist/src/cli/main.js');
    expect(
      files.some((f) => f.startsWith('package/dist/test/') || f.startsWith('package/src/') || f.startsWith('package/dist/bench/')),
    ).toBe(false);
    expect(files).toContain('package/deploy/devstreams-device-proxy.service');
    const modules = join(dir, 'app', 'node_modules');
    expect(existsSync(join(modules, 'typescript'))).toBe(false);
    expect(existsSync(join(modules, 'vitest'))).toBe(false);
    // The figure the README quotes; printed so a change shows in the test log.
    console.log(`tarball ${(statSync(tarball).size / 1024).toFixed(0)} KiB`);
  });

  it('runs devstreams --version and a device proxy from the install', async () => {
    expect(execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim()).toBe(version);
    const home = join(dir, 'home');
    hub = startCli(['hub', '--listen', '127.0.0.1:0', '--data', join(dir, 'hub')], { DEVSTREAMS_HOME: home });
    await hub.waitFor('hub ready');
    const cs = join(dir, 'device.cs');
    expect(runCli(['registry', 'add', 'dev-installed', '--data', join(dir, 'hub'), '--out', cs]).status).toBe(0);
    // The installed bin, not the repo's, with the example config the package ships, as the systemd unit runs it.
    const config = join(dir, 'app', 'node_modules', 'devstreams', 'deploy', 'device-proxy.toml');
    const device = spawn(bin, ['device-proxy', '--config', config, '--connection-string-file', cs], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, DEVSTREAMS_HOME: home },
    });
    let log = '';
    device.stderr.on('data', (c: Buffer) => (log += c.toString()));
    const exited = new Promise((resolve) => device.once('exit', resolve));
    try {
      await until(() => log.includes('device proxy ready') || device.exitCode !== null, 20_000, 'installed device proxy ready');
      expect(log).toContain('control socket connected');
    } finally {
      device.kill('SIGTERM');
      await exited;
    }
  }, 60_000);
});
