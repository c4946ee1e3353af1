/** Runs the built devstreams CLI as child processes for end-to-end tests, and ends them by PID. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { CLI_MAIN } from './build.js';
import { until } from './hub.js';

export { CLI_MAIN, ensureBuilt } from './build.js';

export interface CliProcess {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Waits until stderr or stdout contains `text`. */
  waitFor(text: string, timeoutMs?: number): Promise<void>;
  /** SIGTERM, then SIGKILL after 5 s; resolves when it has exited. */
  stop(): Promise<void>;
}

export function startCli(args: string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  const proc = spawn(process.execPath, [CLI_MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    waitFor: (text, timeoutMs = 15_000) =>
      until(() => out.includes(text) || err.includes(text) || proc.exitCode !== null, timeoutMs, text).then(() => {
        if (!out.includes(text) && !err.includes(text))
          throw new Error(`process exited (${proc.exitCode}) before "${text}": ${err.slice(-2000)}`);
      }),
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI_MAIN, ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
