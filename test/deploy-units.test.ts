/**
 * The systemd units in deploy/ pass `systemd-analyze verify` (syntax, known directives, the
 * specifiers). The ExecStart program is pointed at this checkout's CLI, since verify also checks
 * that it exists; everything else is the unit as shipped.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI_MAIN, ROOT } from './helpers/build.js';
import { RECOMMENDED_NODE_FLAGS } from '../src/cli/node-flags.js';

function analyzeUnavailable(): string | undefined {
  try {
    execFileSync('systemd-analyze', ['--version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return 'systemd-analyze not installed (part of systemd; absent in most containers)';
  }
}
const unavailable = analyzeUnavailable();

// Skipped only where systemd-analyze is missing; the reason is printed.
describe.skipIf(unavailable !== undefined)(`deploy/ systemd units${unavailable ? ` (skipped: ${unavailable})` : ''}`, () => {
  for (const unit of ['devstreams-hub.service', 'devstreams-device-proxy.service']) {
    it(`${unit} passes systemd-analyze verify`, () => {
      const text = readFileSync(join(ROOT, 'deploy', unit), 'utf8');
      expect(text).toMatch(/^Restart=on-failure$/m);
      expect(text).toMatch(/^User=devstreams$/m);
      expect(text).toMatch(/^LoadCredential=/m);
      expect(text).toMatch(/^NoNewPrivileges=yes$/m);
      expect(text).not.toMatch(/--connection-string /);
      expect(text).toMatch(new RegExp(`^ExecStart=/usr/bin/env node ${RECOMMENDED_NODE_FLAGS.join(' ')} /usr/local/bin/devstreams `, 'm'));
      const dir = mkdtempSync(join(tmpdir(), 'devstreams-units-'));
      try {
        const path = join(dir, unit);
        writeFileSync(path, text.replaceAll('/usr/local/bin/devstreams', CLI_MAIN));
        const r = spawnSync('systemd-analyze', ['verify', path], { encoding: 'utf8' });
        // Lines about other units on this machine are not ours to judge.
        const ours = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes(unit));
        expect(ours, ours.join('\n')).toEqual([]);
        expect(r.status, r.stderr).toBe(0);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('the Dockerfile runs the hub with the same node flags', () => {
    const text = readFileSync(join(ROOT, 'deploy', 'Dockerfile'), 'utf8');
    expect(text).toContain(
      `ENTRYPOINT ["node", ${RECOMMENDED_NODE_FLAGS.map((f) => JSON.stringify(f)).join(', ')}, "/usr/local/bin/devstreams", "hub",`,
    );
  });
});
