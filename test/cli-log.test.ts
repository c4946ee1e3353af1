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
    const batch = new LineBatch({ write: (d) => writes.push(d) > 0, flushSync: () => {} }, -1, 10, 100);
    for (let i = 0; i < 5; i++) batch.write(`line ${i}\n`);
    expect(writes).toEqual([]);
    await until(() => writes.length > 0);
    expect(writes).toEqual(['line 0\nline 1\nline 2\nline 3\nline 4\n']);
    for (let i = 0; i < 10; i++) batch.write(`${'x'.repeat(19)}\n`); // 200 bytes: two full batches
    expect(writes).toHaveLength(3);
  });
});

describe('JSON log lines', () => {
  beforeAll(() => ensureBuilt());

  it('are all written when the process exits at once after logging them', async () => {
    const stderr = await runWithLogger(`for (let i = 0; i < 500; i++) log.info({ i }, 'line ' + i); process.exit(0);`);
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
