/**
 * The control master of `devstreams connect` on real processes (hub, device proxy, detached
 * master, echo target): --exit stops it with a channel open, a persist timer from an earlier idle
 * spell does not stop it under a live channel, and a client with other key expectations gets a
 * master of its own.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_MAIN, ensureBuilt, runCli, startCli, type CliProcess } from './helpers/cli-process.js';
import { startEchoServer, closedPort, type Target } from './helpers/targets.js';
import { until } from './helpers/hub.js';

/** A connect client whose stdin stays open: a live channel. */
function holdChannel(
  args: string[],
  env: NodeJS.ProcessEnv,
): { proc: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null> } {
  const proc = spawn(process.execPath, [CLI_MAIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  let err = '';
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  return { proc, out: () => out, err: () => err, exited: new Promise((resolve) => proc.once('exit', resolve)) };
}

describe('devstreams connect control master lifecycle', () => {
  let dir: string;
  let hub: CliProcess;
  let device: CliProcess;
  let echo: Target;
  let serviceCs: string;
  const held: ChildProcess[] = [];
  const paths: string[] = [];
  const env = (): NodeJS.ProcessEnv => ({ DEVSTREAMS_HOME: join(dir, 'home') });
  const connectArgs = (...rest: string[]): string[] => ['connect', '--connection-string-file', serviceCs, ...rest];
  const once = (args: string[], input: string): ReturnType<typeof spawnSync> =>
    spawnSync(process.execPath, [CLI_MAIN, ...args], { input, encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env() } });

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'devstreams-connect-ctl-'));
    echo = await startEchoServer();
    hub = startCli(['hub', '--listen', '127.0.0.1:0', '--data', join(dir, 'hub')], env());
    await hub.waitFor('hub ready');
    const deviceCs = join(dir, 'device.cs');
    serviceCs = join(dir, 'service.cs');
    expect(runCli(['registry', 'add', 'dev-ctl', '--data', join(dir, 'hub'), '--out', deviceCs]).status).toBe(0);
    expect(runCli(['registry', 'service-string', '--data', join(dir, 'hub'), '--out', serviceCs]).status).toBe(0);
    expect(runCli(['key', 'authorize', runCli(['key', 'show'], env()).stdout.trim(), '--name', 'operator'], env()).status).toBe(0);
    device = startCli(['device-proxy', '--connection-string-file', deviceCs, '--allow', `127.0.0.1:${echo.port}`], env());
    await device.waitFor('device proxy ready');
  }, 60_000);

  afterAll(async () => {
    for (const p of held) if (p.exitCode === null) p.kill('SIGTERM');
    if (dir) {
      for (const path of paths) runCli(connectArgs('dev-ctl', '--control-path', path, '--exit'), env());
      runCli(connectArgs('dev-ctl', '--exit'), env());
    }
    await device?.stop();
    await hub?.stop();
    await echo?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('--exit stops a master that has a channel open: the channel ends and the socket goes', async () => {
    const path = join(dir, 'ctl', 'exit.sock');
    paths.push(path);
    const channel = holdChannel(connectArgs('dev-ctl', '--control-path', path, '--persist', '30', `127.0.0.1:${echo.port}`), env());
    held.push(channel.proc);
    channel.proc.stdin!.write('before-exit\n');
    await until(() => channel.out().includes('before-exit'), 30_000, 'echo through the channel');
    // The first contact pinned the device key: the client says so (the master's log is not read).
    expect(channel.err()).toContain('Permanently added device dev-ctl');
    const r = runCli(connectArgs('dev-ctl', '--control-path', path, '--exit'), env());
    expect(r.stderr).toContain('control master for dev-ctl stopped');
    // The master ends its channels when it stops: the client's next write fails and it exits.
    // (A live channel would echo this instead.)
    channel.proc.stdin!.on('error', () => {});
    let writes = 0;
    await until(
      () => {
        if (channel.proc.exitCode === null && writes++ % 10 === 0) channel.proc.stdin!.write('after-exit\n');
        return channel.proc.exitCode !== null;
      },
      20_000,
      'the client to exit',
    );
    expect(channel.out()).not.toContain('after-exit');
    await until(() => !existsSync(path), 10_000, 'the control socket to go');
    expect(readFileSync(join(dir, 'ctl', 'exit.log'), 'utf8')).toContain('control master stopping');
  }, 60_000);

  it('a persist timer from an earlier idle spell does not stop the master under a live channel', async () => {
    const path = join(dir, 'ctl', 'persist.sock');
    paths.push(path);
    const args = (target: string): string[] => connectArgs('dev-ctl', '--control-path', path, '--persist', '4', target);
    const first = holdChannel(args(`127.0.0.1:${echo.port}`), env());
    held.push(first.proc);
    first.proc.stdin!.write('a\n');
    await until(() => first.out().includes('a\n'), 30_000, 'echo through the first channel');
    first.proc.kill('SIGTERM'); // the channel ends; the master's first idle spell begins
    await first.exited;
    // The master's first idle spell begins when it has seen that channel close.
    const log = join(dir, 'ctl', 'persist.log');
    await until(() => readFileSync(log, 'utf8').includes('"outcome":"closed"'), 10_000, 'the master to see the first channel close');
    // A refused request in between: it must not leave the first idle spell's timer armed.
    const refused = once(args(`127.0.0.1:${await closedPort()}`), '');
    expect(refused.status).toBe(1);
    expect(refused.stderr).toContain('ERR_TARGET_NOT_ALLOWED');
    const channel = holdChannel(args(`127.0.0.1:${echo.port}`), env());
    held.push(channel.proc);
    channel.proc.stdin!.write('x\n');
    await until(() => channel.out().includes('x\n'), 30_000, 'echo through the live channel');
    // Past the first idle spell's 4 s: a leaked timer would have fired by now. (The first idle
    // spell began before the refused request and this channel's start, about 2 s together.)
    await new Promise((resolve) => setTimeout(resolve, 4500));
    channel.proc.stdin!.write('y\n');
    await until(() => channel.out().includes('y\n') || channel.proc.exitCode !== null, 30_000, 'second echo');
    expect(channel.out()).toBe('x\ny\n');
    expect(existsSync(path)).toBe(true);
    expect(readFileSync(join(dir, 'ctl', 'persist.log'), 'utf8')).not.toContain('control master stopping');
  }, 60_000);

  it('a client with another --device-key does not ride an existing master', async () => {
    const target = `127.0.0.1:${echo.port}`;
    const channel = holdChannel(connectArgs('dev-ctl', '--persist', '30', target), env());
    held.push(channel.proc);
    channel.proc.stdin!.write('pinned\n');
    await until(() => channel.out().includes('pinned'), 30_000, 'echo through the default master');
    const other = once(connectArgs('dev-ctl', '--device-key', randomBytes(32).toString('base64'), target), 'x\n');
    expect(other.stdout).toBe('');
    expect(other.status).toBe(1);
    expect(other.stderr).toContain('ERR_HANDSHAKE_PEER_UNKNOWN');
  }, 60_000);
});
