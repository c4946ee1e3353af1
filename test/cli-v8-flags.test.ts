// The CLI sets its V8 flags (src/cli/v8-flags.ts) before it loads a long-running command, so the
// code of the command is compiled under them: by default straight to baseline code
// (--always-sparkplug). One-shot commands start without them.
import { execFile } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLI_MAIN, ensureBuilt } from './helpers/build.js';

/**
 * Runs the CLI (`devstreams <command> --help`) in a child Node process with natives syntax on, and
 * reports from its 'exit' which tier a function compiled after the CLI started runs in after one call.
 */
function tierAfterCli(command: string, env: NodeJS.ProcessEnv = {}): Promise<string> {
  const body = [
    "process.on('exit', () => { const f = new Function('return 1'); f();",
    "process.stderr.write(%ActiveTierIsSparkplug(f) ? 'tier=sparkplug\\n' : %ActiveTierIsIgnition(f) ? 'tier=ignition\\n' : 'tier=other\\n'); });",
    `process.argv = [process.execPath, 'main.js', ${JSON.stringify(command)}, '--help']; await import(${JSON.stringify(CLI_MAIN)});`,
  ].join(' ');
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--allow-natives-syntax', '--input-type=module', '-e', body],
      { env: { ...process.env, ...env } },
      (_err, _stdout, stderr) => resolve(/tier=(\w+)/.exec(stderr)?.[1] ?? `none: ${stderr}`),
    );
  });
}

describe('CLI V8 flags', () => {
  beforeAll(() => ensureBuilt(), 120_000);

  it("compiles the proxies' and the hub's code straight to baseline by default", async () => {
    for (const command of ['service-proxy', 'device-proxy', 'hub'])
      expect(await tierAfterCli(command, { DEVSTREAMS_V8_FLAGS: undefined })).toBe('sparkplug'); // undefined: not passed on
  });

  it('sets none for a one-shot command', async () => {
    expect(await tierAfterCli('connect', { DEVSTREAMS_V8_FLAGS: undefined })).toBe('ignition');
  });

  it('sets none when DEVSTREAMS_V8_FLAGS is empty', async () => {
    expect(await tierAfterCli('service-proxy', { DEVSTREAMS_V8_FLAGS: '' })).toBe('ignition');
  });
});
