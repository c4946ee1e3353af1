/**
 * `devstreams connect` as an ssh ProxyCommand, the way the README's ~/.ssh/config block uses it:
 * a real OpenSSH client to a private sshd through a real hub and device proxy, two sessions at
 * once, the second served by the control master over the first one's device stream (the hub's
 * /metrics count one stream request).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_MAIN, ensureBuilt, runCli, startCli, type CliProcess } from './helpers/cli-process.js';
import { startSshd, sshUnavailableReason, type Sshd } from './helpers/sshd.js';
import { until } from './helpers/hub.js';

const run = promisify(execFile);
const noSsh = sshUnavailableReason();

/** A counter's value summed over its labels matching `labels`, from Prometheus text. */
function metric(text: string, name: string, labels = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name) && line.includes(labels)) sum += Number(line.split(' ').pop());
  return sum;
}

// Skipped only where OpenSSH is not installed (.ci/run installs it); the reason is printed.
describe.skipIf(noSsh !== undefined)(`devstreams connect as ssh ProxyCommand${noSsh ? ` (skipped: ${noSsh})` : ''}`, () => {
  let dir: string;
  let sshd: Sshd;
  let hub: CliProcess;
  let device: CliProcess;
  let hubUrl: string;
  let sshConfig: string;
  let serviceCs: string;
  const env = (): NodeJS.ProcessEnv => ({ DEVSTREAMS_HOME: join(dir, 'home') });
  const connectArgs = (...rest: string[]): string[] => ['connect', '--connection-string-file', serviceCs, ...rest];

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'devstreams-connect-'));
    sshd = await startSshd(dir);
    hub = startCli(['hub', '--listen', '127.0.0.1:0', '--data', join(dir, 'hub')], env());
    await hub.waitFor('hub ready');
    const deviceCs = join(dir, 'device.cs');
    serviceCs = join(dir, 'service.cs');
    expect(runCli(['registry', 'add', 'dev-connect', '--data', join(dir, 'hub'), '--out', deviceCs]).status).toBe(0);
    expect(runCli(['registry', 'service-string', '--data', join(dir, 'hub'), '--out', serviceCs]).status).toBe(0);
    hubUrl = `http://${/HostName=([^;]+)/.exec(readFileSync(serviceCs, 'utf8'))![1]}`;
    expect(runCli(['key', 'authorize', runCli(['key', 'show'], env()).stdout.trim(), '--name', 'operator'], env()).status).toBe(0);
    device = startCli(['device-proxy', '--connection-string-file', deviceCs, '--allow', `127.0.0.1:${sshd.port}`], env());
    await device.waitFor('device proxy ready');
    // The README's ~/.ssh/config block, with this test's keys and paths.
    sshConfig = join(dir, 'ssh_config');
    writeFileSync(
      sshConfig,
      [
        'Host dev-*',
        `  User ${sshd.user}`,
        `  IdentityFile ${join(dir, 'client_key')}`,
        '  StrictHostKeyChecking no',
        `  UserKnownHostsFile ${join(dir, 'known_hosts')}`,
        '  BatchMode yes',
        '  LogLevel ERROR',
        `  ProxyCommand ${process.execPath} ${CLI_MAIN} connect --connection-string-file ${serviceCs} --persist 20 %h 127.0.0.1:${sshd.port}`,
        '',
      ].join('\n'),
    );
  }, 60_000);

  afterAll(async () => {
    if (dir) runCli(connectArgs('dev-connect', '--exit'), env());
    await device?.stop();
    await hub?.stop();
    await sshd?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('two concurrent ssh sessions share one device stream through the control master', async () => {
    const before = metric(await (await fetch(`${hubUrl}/metrics`)).text(), 'devstreams_stream_requests_total');
    // The first session stays open (cat waits on stdin) while the second one runs.
    const first = spawn('ssh', ['-F', sshConfig, 'dev-connect', 'echo first-ready; cat'], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...env() },
    });
    let out1 = '';
    let err1 = '';
    first.stdout.on('data', (c: Buffer) => (out1 += c.toString()));
    first.stderr.on('data', (c: Buffer) => (err1 += c.toString()));
    const firstExit = new Promise<number | null>((resolve) => first.once('exit', resolve));
    await until(() => out1.includes('first-ready') || first.exitCode !== null, 30_000, 'first ssh session');
    expect(out1, err1).toContain('first-ready');

    const { stdout } = await run('ssh', ['-F', sshConfig, 'dev-connect', 'echo second-$((6*7))'], {
      timeout: 30_000,
      env: { ...process.env, ...env() },
    });
    expect(stdout.trim()).toBe('second-42');

    first.stdin.end('through-cat\n');
    expect(await firstExit).toBe(0);
    expect(out1).toContain('through-cat');

    const text = await (await fetch(`${hubUrl}/metrics`)).text();
    expect(metric(text, 'devstreams_stream_requests_total') - before).toBe(1);
    expect(metric(text, 'devstreams_stream_requests_total', 'outcome="accepted"')).toBe(1);
  }, 60_000);

  it('keeps the control socket private and reports a refused target by its code', () => {
    const controlDir = join(dir, 'home', 'control');
    expect(statSync(controlDir).mode & 0o777).toBe(0o700);
    const sock = readdirSync(controlDir).find((f) => f.endsWith('.sock'))!;
    expect(statSync(join(controlDir, sock)).mode & 0o777).toBe(0o600);
    const refused = runCli(connectArgs('dev-connect', '127.0.0.1:1'), env());
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('ERR_TARGET_NOT_ALLOWED');
  });

  it('stops the master on --exit and removes its socket', () => {
    const r = runCli(connectArgs('dev-connect', '--exit'), env());
    expect(r.stderr).toContain('control master for dev-connect stopped');
    const controlDir = join(dir, 'home', 'control');
    expect(readdirSync(controlDir).some((f) => f.endsWith('.sock') && existsSync(join(controlDir, f)))).toBe(false);
  });

  it('uses a running service-proxy --control as the master', async () => {
    const service = startCli(
      [
        'service-proxy',
        '--connection-string-file',
        serviceCs,
        '--device-id',
        'dev-connect',
        '--forward',
        `0:127.0.0.1:${sshd.port}`,
        '--control',
        '--eager',
      ],
      env(),
    );
    try {
      await service.waitFor('control socket ready');
      await service.waitFor('"state":"open"');
      const before = metric(await (await fetch(`${hubUrl}/metrics`)).text(), 'devstreams_stream_requests_total');
      const { stdout } = await run('ssh', ['-F', sshConfig, 'dev-connect', 'echo via-service-proxy'], {
        timeout: 30_000,
        env: { ...process.env, ...env() },
      });
      expect(stdout.trim()).toBe('via-service-proxy');
      expect(metric(await (await fetch(`${hubUrl}/metrics`)).text(), 'devstreams_stream_requests_total') - before).toBe(0);
      expect(existsSync(join(dir, 'home', 'control'))).toBe(true);
    } finally {
      await service.stop();
    }
  }, 60_000);
});
