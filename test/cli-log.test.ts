// The CLI's JSON log lines are batched (src/cli/log.ts): none may be lost on the way out, and a
// line logged by a process that then sits idle is still written.
import { execFile, spawn } from 'node:child_process';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { LineBatch } from '../src/cli/log-batch.js';
import { ROOT, ensureBuilt } from './helpers/build.js';
import { until } from './helpers/until.js';

const LOG_JS = path.join(ROOT, 'dist', 'src', 'cli', 'log.js');

/** Node's arguments to run `body` with `log` (a JSON logger at info) in scope. */
const withLogger = (body: string): string[] => [
  '--input-type=module',
  '-e',
  `import { createLogger } from ${JSON.stringify(LOG_JS)}; const log = createLogger({ logLevel: 'info', logFormat: 'json' }); ${body}`,
];

/** Runs `body` in a child Node process (see withLogger); resolves with its stderr, whatever its exit. */
function runWithLogger(body: string): Promise<string> {
  return new Promise((resolve) => {
    execFile(process.execPath, withLogger(body), (_err, _stdout, stderr) => resolve(stderr));
  });
}

const messages = (stderr: string): string[] =>
  stderr
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => (JSON.parse(l) as { msg: string }).msg);

describe('a batch of log lines', () => {
  it('hands lines logged together to its destination in one write, and a full batch at once', async () => {
    const writes: string[] = [];
    const batch = new LineBatch(-1, 10, 100, (_fd, d) => {
      writes.push(d.toString());
      return d.length;
    });
    for (let i = 0; i < 5; i++) batch.write(`line ${i}\n`);
    expect(writes).toEqual([]);
    await until(() => writes.length > 0);
    expect(writes).toEqual(['line 0\nline 1\nline 2\nline 3\nline 4\n']);
    for (let i = 0; i < 10; i++) batch.write(`${'x'.repeat(19)}\n`); // 200 bytes: two full batches
    expect(writes).toHaveLength(3);
  });
});

describe('a batch of log lines on a full pipe', () => {
  it('keeps what the pipe refused, in order before later lines, and writes it on a later try', async () => {
    const written: string[] = [];
    let full = true;
    const batch = new LineBatch(-1, 5, 1000, (_fd, d) => {
      if (full) {
        // takes the first 4 bytes, then would block
        if (written.length === 0) {
          written.push(d.subarray(0, 4).toString());
          return 4;
        }
        throw Object.assign(new Error('EAGAIN'), { code: 'EAGAIN' });
      }
      written.push(d.toString());
      return d.length;
    });
    batch.write('aaaa-first\n');
    batch.flush();
    batch.write('second\n');
    batch.flush();
    expect(written).toEqual(['aaaa']);
    full = false;
    await until(() => written.join('') === 'aaaa-first\nsecond\n');
    batch.write('third\n');
    batch.flush();
    expect(written.join('')).toBe('aaaa-first\nsecond\nthird\n');
  });

  it('drops lines quietly once the descriptor is gone (a broken pipe)', () => {
    let calls = 0;
    const batch = new LineBatch(-1, 5, 1000, () => {
      calls++;
      throw Object.assign(new Error('EPIPE'), { code: 'EPIPE' });
    });
    batch.write('x\n');
    expect(() => batch.flush()).not.toThrow();
    batch.write('y\n');
    batch.flush();
    expect(calls).toBe(1);
  });
});

describe('JSON log lines', () => {
  beforeAll(() => ensureBuilt());

  it('are all written when the process exits at once after logging them', async () => {
    const stderr = await runWithLogger(`for (let i = 0; i < 500; i++) log.info({ i }, 'line ' + i); process.exit(0);`);
    expect(messages(stderr)).toEqual(Array.from({ length: 500 }, (_, i) => `line ${i}`));
  });

  it("are all written, in order, on an exit while libuv's thread pool is busy", async () => {
    // Every thread-pool thread is held by a long key derivation, so a write handed to the pool
    // (an asynchronous fs.write) cannot run before the exit: the lines must leave another way.
    const busy = `import { pbkdf2 } from 'node:crypto'; for (let t = 0; t < 4; t++) pbkdf2('p', 's', 1e6, 64, 'sha512', () => {});`;
    const stderr = await runWithLogger(`${busy} for (let i = 0; i < 500; i++) log.info({ i }, 'line ' + i); process.exit(0);`);
    expect(messages(stderr)).toEqual(Array.from({ length: 500 }, (_, i) => `line ${i}`));
  });

  it('are written while the process keeps running, without an exit', async () => {
    const child = spawn(process.execPath, withLogger(`log.info('first'); setInterval(() => {}, 1000);`));
    try {
      const line = await new Promise<string>((resolve) => child.stderr.once('data', (d: Buffer) => resolve(d.toString())));
      expect(messages(line)).toEqual(['first']);
    } finally {
      child.kill();
    }
  });

  it('are all written when the process ends on an uncaught error', async () => {
    const stderr = await runWithLogger(`log.info('before'); setTimeout(() => { throw new Error('boom'); }, 0);`);
    expect(stderr.split('\n')[0]).toContain('"msg":"before"');
  });
});
