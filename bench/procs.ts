// Child processes of the bench: spawn, wait until ready, stop by PID (SIGTERM, then SIGKILL).
// Only processes started here are ever signalled.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PROCESS_READY_TIMEOUT_MS, PROCESS_STOP_TIMEOUT_MS, PROFILE_STOP_TIMEOUT_MS } from './config.js';

/**
 * `npm run profile` sets this to "<tool>:<role>[:<dest dir>]" (tool: flame | doctor): the bench child
 * of that role (links, targets, bulk, hub, device-proxy, service-proxy) then runs under
 * `clinic <tool>`, which writes its report when the child ends.
 */
export const PROFILE_ENV = 'DEVSTREAMS_BENCH_PROFILE';

/** A process a path started, with the role it plays (device proxy, relay, sshd, ...). */
export interface ProcessRef {
  readonly pid: number;
  readonly role: string;
  /** Also count its descendants (sshd forks one process per connection). */
  readonly withChildren?: boolean;
}

export interface Child {
  readonly proc: ChildProcess;
  readonly pid: number;
  stop(): Promise<void>;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** Absolute path of a compiled bench child entry, e.g. `procs/links-main.js`. */
export function benchScript(rel: string): string {
  return path.join(HERE, rel);
}

/** Spawns a process whose stderr is kept (last lines) for error messages. */
export function spawnChild(cmd: string, args: readonly string[], opts: SpawnOptions = {}, profiled = false): Child {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts, ...(profiled ? { detached: true } : {}) });
  if (proc.pid === undefined) throw new Error(`could not spawn ${cmd}`);
  const pid = proc.pid;
  let stderrTail = '';
  proc.stderr?.on('data', (d: Buffer) => {
    stderrTail = (stderrTail + d.toString()).slice(-2000);
    if (profiled) process.stderr.write(d);
  });
  (proc as ChildProcess & { stderrTail: () => string }).stderrTail = () => stderrTail;
  return { proc, pid, stop: () => (profiled ? stopProfiled(proc) : stopChild(proc)) };
}

/** Ends a clinic-wrapped child like Ctrl-C would (SIGINT to its own process group), then waits for the report. */
async function stopProfiled(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return;
  const pid = proc.pid;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  process.kill(-pid, 'SIGINT');
  const timer = setTimeout(() => process.kill(-pid, 'SIGKILL'), PROFILE_STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

interface ProfileRequest {
  readonly tool: string;
  readonly role: string;
  readonly dest: string;
}

function profileRequest(): ProfileRequest | undefined {
  const v = process.env[PROFILE_ENV];
  if (v === undefined || v === '') return undefined;
  const [tool = 'flame', role = 'links', ...rest] = v.split(':');
  return { tool, role, dest: rest.join(':') || process.cwd() };
}

/** Role of a bench child script: "procs/links-main.js" -> "links". */
export function roleOf(script: string): string {
  return path.basename(script).replace(/(-main)?\.js$/, '');
}

export function stderrOf(c: Child): string {
  return (c.proc as ChildProcess & { stderrTail?: () => string }).stderrTail?.() ?? '';
}

async function stopChild(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), PROCESS_STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

/** Spawns `node <script> <args>` and resolves with the JSON object of its first stdout line. */
/**
 * Spawns `node <script> <args>` as the bench child of `role`: under clinic when `npm run profile`
 * asked for that role, plainly otherwise. `env` is added to the bench's environment.
 */
/**
 * Starts `node [nodeFlags] script args` (under clinic or --cpu-prof when the profile options ask
 * for this role).
 */
export function spawnNode(
  script: string,
  args: readonly string[],
  role = roleOf(script),
  env: NodeJS.ProcessEnv = {},
  nodeFlags: readonly string[] = [],
): Child {
  const prof = profileRequest();
  const profiled = prof !== undefined && prof.role === role;
  return profiled
    ? spawnChild(
        process.execPath,
        [
          path.join(HERE, '..', '..', 'node_modules', 'clinic', 'bin.js'),
          prof.tool,
          '--open=false',
          '--dest',
          prof.dest,
          '--',
          process.execPath,
          ...nodeFlags,
          script,
          ...args,
        ],
        { env: { ...process.env, ...env, NO_INSIGHT: '1' } },
        true,
      )
    : spawnChild(process.execPath, [...cpuProfFlags(role), ...nodeFlags, script, ...args], { env: { ...process.env, ...env } });
}

/**
 * `DEVSTREAMS_BENCH_CPU_PROF=<dir>[:<role>,...]`: children (of those roles, or all) run with
 * `node --cpu-prof`, writing CPU.<date>.<pid>...cpuprofile into dir when they exit; lighter than clinic, and
 * the process keeps its pid (signals such as makeCold's SIGUSR2 still reach it).
 */
export const CPU_PROF_ENV = 'DEVSTREAMS_BENCH_CPU_PROF';

function cpuProfFlags(role: string): string[] {
  const v = process.env[CPU_PROF_ENV];
  if (v === undefined || v === '') return [];
  const [dir = '.', roles] = v.split(':');
  if (roles !== undefined && !roles.split(',').includes(role)) return [];
  return ['--cpu-prof', `--cpu-prof-dir=${dir}`];
}

/**
 * Resolves with the first line of `child`'s stdout or stderr (`from`) that `match` accepts (its
 * return value), or rejects after the timeout or when the child exits first. Lines that are
 * JSON objects (pino logs) are passed parsed as well.
 */
export function waitForLine<T>(
  child: Child,
  from: 'stdout' | 'stderr',
  match: (line: string, json: Record<string, unknown> | undefined) => T | undefined,
  timeoutMs = PROCESS_READY_TIMEOUT_MS,
  what = 'line',
): Promise<T> {
  const stream = from === 'stdout' ? child.proc.stdout : child.proc.stderr;
  return new Promise<T>((resolve, reject) => {
    let buf = '';
    const cleanup = (): void => {
      clearTimeout(timer);
      stream?.off('data', onData);
      child.proc.off('exit', onExit);
    };
    const onData = (d: Buffer): void => {
      buf += d.toString();
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        let json: Record<string, unknown> | undefined;
        if (line.startsWith('{')) {
          try {
            json = JSON.parse(line) as Record<string, unknown>;
          } catch {
            json = undefined;
          }
        }
        const v = match(line, json);
        if (v !== undefined) {
          cleanup();
          resolve(v);
          return;
        }
      }
    };
    const onExit = (code: number | null): void => {
      cleanup();
      reject(new Error(`process exited (${code}) before ${what}: ${stderrOf(child)}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no ${what} within ${timeoutMs} ms: ${stderrOf(child)}`));
    }, timeoutMs);
    stream?.on('data', onData);
    child.proc.once('exit', onExit);
  });
}

export async function spawnNodeReady<T>(
  script: string,
  args: readonly string[],
  role = roleOf(script),
): Promise<{ child: Child; ready: T }> {
  const child = spawnNode(script, args, role);
  const ready = await new Promise<T>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => fail(new Error(`${path.basename(script)}: not ready in time`)), PROCESS_READY_TIMEOUT_MS);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      void child.stop();
      reject(err);
    };
    let done = false;
    child.proc.stdout?.on('data', (d: Buffer) => {
      if (done) return;
      buf += d.toString();
      // The ready line is the first line that is a JSON object (a profiler wrapper prints its own lines).
      for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line.startsWith('{')) continue;
        done = true;
        clearTimeout(timer);
        try {
          resolve(JSON.parse(line) as T);
        } catch (err) {
          fail(err as Error);
        }
        return;
      }
    });
    child.proc.once('exit', (code) => fail(new Error(`${path.basename(script)} exited (${code}): ${stderrOf(child)}`)));
  });
  return { child, ready };
}

/** Resolves once 127.0.0.1:port accepts a connection, or rejects after the timeout. */
export async function waitForPort(port: number, timeoutMs = PROCESS_READY_TIMEOUT_MS, alive?: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let i = 0; i < 10_000 && Date.now() < deadline; i++) {
    if (alive !== undefined && !alive()) throw new Error(`process exited before port ${port} opened`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`port ${port} did not open within ${timeoutMs} ms`);
}

/** A currently free 127.0.0.1 port (for programs that cannot report an ephemeral one). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
  const addr = srv.address();
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  if (addr === null || typeof addr === 'string') throw new Error('no free port');
  return addr.port;
}
