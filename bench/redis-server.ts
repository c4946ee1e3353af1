/**
 * A private `redis-server` on a free 127.0.0.1 port, without persistence, as a child process
 * stopped by its PID (fleet bench and fleet tests). `hasRedisServer` tells whether the binary
 * is installed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { freePort } from './procs.js';

/** True when `redis-server` is on the PATH. */
export const hasRedisServer = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).status === 0;

export interface TestRedis {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Starts a redis-server; resolves once it accepts connections (at most 10 s). `extraArgs` (e.g. a
 * password, or `--tls-port` with port 0) come after the defaults, so they win.
 */
export async function startRedis(port?: number, extraArgs: readonly string[] = []): Promise<TestRedis> {
  const p = port ?? (await freePort());
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes', ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start on port ${p}: ${out.slice(-500)}`)), 10_000);
    const onData = (c: Buffer): void => {
      out += c.toString();
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code}): ${out.slice(-500)}`));
    });
  });
  child.stdout!.resume();
  child.stderr!.resume();
  const pid = child.pid!;
  return {
    url: `redis://127.0.0.1:${p}`,
    port: p,
    pid,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => {
          process.kill(pid, 'SIGKILL');
        }, 3000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        process.kill(pid, 'SIGTERM');
      }),
  };
}
