/** A hub run as a child process (`node dist/src/cli/main.js hub`) that can be SIGKILLed and restarted on the same port and data directory. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { waitForPort } from '../../bench/procs.js';

export const CLI_MAIN = join(process.cwd(), 'dist/src/cli/main.js');

export function ensureBuilt(): void {
  if (!existsSync(CLI_MAIN)) spawnSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit', timeout: 180_000 });
}

export function cli(...args: string[]): string {
  const r = spawnSync(process.execPath, [CLI_MAIN, ...args], { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`devstreams ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout.trim();
}

export { freePort } from '../../bench/procs.js';

export class HubProcess {
  private child: ChildProcess | undefined;
  starts = 0;

  constructor(
    readonly port: number,
    readonly dataDir: string,
  ) {}

  /** The running hub's process id, if started. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the hub and resolves once it logged that it is ready (bounded). */
  async start(timeoutMs = 15_000): Promise<void> {
    const child = spawn(
      process.execPath,
      [CLI_MAIN, 'hub', '--listen', `127.0.0.1:${this.port}`, '--data', this.dataDir, '--log-level', 'warn'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.child = child;
    this.starts++;
    child.stderr!.on('data', () => {});
    await waitForPort(this.port, timeoutMs, () => child.exitCode === null).catch((err: Error) => {
      throw new Error(`hub did not start (exit code ${child.exitCode}): ${err.message}`);
    });
  }

  /** SIGKILL: no goodbye to anyone. Resolves once the process is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await gone;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  }
}
