// JSON log lines on a terminal whose output is stopped (Ctrl-S, a paused pane, a stalled ssh
// session) must not stop the process: the lines wait in memory and the event loop runs on.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, ensureBuilt } from './helpers/build.js';

const LOG_JS = path.join(ROOT, 'dist', 'src', 'cli', 'log.js');

/**
 * Runs argv with its stderr on a pseudo-terminal that nobody reads (python3's pty module: Node
 * has no pty of its own), at most `timeoutS` seconds; resolves when it ends either way.
 */
function onStoppedTerminal(argv: string[], timeoutS: number): Promise<void> {
  const py = [
    'import os, pty, subprocess, sys',
    'master, slave = pty.openpty()',
    'p = subprocess.Popen(sys.argv[2:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave)',
    'os.close(slave)',
    'try:\n    p.wait(timeout=float(sys.argv[1]))\nexcept subprocess.TimeoutExpired:\n    p.kill(); p.wait()',
  ].join('\n');
  return new Promise((resolve) => {
    execFile('python3', ['-c', py, String(timeoutS), ...argv], () => resolve());
  });
}

describe('JSON log lines on a stopped terminal', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ds-log-tty-'));
  beforeAll(() => ensureBuilt());
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('leave the event loop running while the terminal takes nothing', async () => {
    const done = path.join(dir, 'done');
    // 1 KiB lines every millisecond for 600 ms (far more than a terminal buffers), then a timer
    // that can only fire if the loop was never held, which writes the file and exits.
    const body = [
      `import { createLogger } from ${JSON.stringify(LOG_JS)};`,
      `import fs from 'node:fs';`,
      `const log = createLogger({ logLevel: 'info', logFormat: 'json' });`,
      `const pad = 'x'.repeat(1000); let n = 0;`,
      `const t = setInterval(() => log.info({ n: n++, pad }, 'line'), 1);`,
      `setTimeout(() => clearInterval(t), 600);`,
      `setTimeout(() => { fs.writeFileSync(${JSON.stringify(done)}, String(n)); process.exit(0); }, 800);`,
    ].join(' ');
    await onStoppedTerminal([process.execPath, '--input-type=module', '-e', body], 10);
    let lines = '';
    try {
      lines = readFileSync(done, 'utf8');
    } catch {
      // not written: the loop was held by a blocked write
    }
    expect(Number(lines)).toBeGreaterThan(100);
  }, 20_000);
});
