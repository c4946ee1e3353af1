// The OpenSSH baseline path: a private sshd, ssh -L with aes128-gcm, and a blind relay between them
// carry bytes to the targets; without ssh/sshd the bench skips the path with an install hint.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUN_JS = path.join(ROOT, 'dist', 'bench', 'run.js');

interface Results {
  paths: { id: string; skipped?: string }[];
  records: { scenario: string; metrics: Record<string, number>; error?: string; usage?: { role: string; cpuSeconds: number }[] }[];
}

describe('openssh path', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-openssh-test-'));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('runs bulk and round trips through ssh -L and the relay, or is skipped with a note', async () => {
    if (!fs.existsSync(RUN_JS)) {
      execFileSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {
        cwd: ROOT,
      });
    }
    const args = ['--quick', '--rounds', '1', '--paths', 'openssh', '--placements', 'loopback', '--scenarios', 'bulk-1,rtt', '--no-charts'];
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, [RUN_JS, ...args, '--out', path.join(tmp, 'R.md'), '--json', tmp], {
        cwd: ROOT,
        stdio: 'ignore',
      });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error('bench did not finish in time'));
      }, 40_000);
      child.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(code).toBe(0);
    const r = JSON.parse(fs.readFileSync(path.join(tmp, 'results-quick.json'), 'utf8')) as Results;
    const p = r.paths.find((x) => x.id === 'openssh');
    if (p?.skipped !== undefined) {
      expect(p.skipped).toMatch(/apt-get install -y openssh-(server|client)|ssh-keygen/);
      expect(r.records).toEqual([]);
      return;
    }
    expect(r.records.map((x) => x.error)).toEqual([undefined, undefined]);
    const bulk = r.records.find((x) => x.scenario === 'bulk-1');
    expect(bulk?.metrics.MBps).toBeGreaterThan(0);
    expect(bulk?.usage?.map((u) => u.role)).toEqual(['ssh client', 'relay', 'sshd']);
    expect(r.records.find((x) => x.scenario === 'rtt')?.metrics.samples).toBeGreaterThan(0);
  }, 60_000);
});
