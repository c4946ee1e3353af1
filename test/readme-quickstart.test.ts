/**
 * The README's quickstart, run as a user pastes it: the first ```sh block under "## Quickstart"
 * is taken from README.md as it stands (so it stays true as the quickstart changes) and run as
 * one bash script in an empty directory with a private DEVSTREAMS_HOME, `devstreams` on PATH as
 * `npm link` would put it, and a private sshd. The only rewrites are the port numbers: the hub's
 * 8080, the forwarded 2222 and the device's sshd at 127.0.0.1:22 become free ports; and `ssh`
 * on PATH adds the test's key and non-interactive options and runs one command.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os, { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/procs.js';
import { CLI_MAIN, ensureBuilt } from './helpers/cli-process.js';
import { ROOT } from './helpers/build.js';
import { startSshd, sshUnavailableReason, type Sshd } from './helpers/sshd.js';

const noSsh = sshUnavailableReason();
/** What the remote command prints when the ssh session through the tunnel worked. */
const MARKER = 'quickstart-ssh-ok';

/** The first ```sh block after the "## Quickstart" heading. */
export function quickstartBlock(readme: string): string {
  const at = readme.search(/^## Quickstart/m);
  if (at < 0) throw new Error('README.md has no "## Quickstart" section');
  const m = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!m) throw new Error('the Quickstart section has no ```sh block');
  return m[1]!;
}

// Skipped only where OpenSSH is not installed (.ci/run installs it); the reason is printed.
describe.skipIf(noSsh !== undefined)(`README quickstart, pasted as one block${noSsh ? ` (skipped: ${noSsh})` : ''}`, () => {
  let dir: string;
  let sshd: Sshd;

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'devstreams-quickstart-'));
    sshd = await startSshd(dir);
  }, 60_000);

  afterAll(async () => {
    await sshd?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('ends in a working ssh session through the tunnel', async () => {
    const block = quickstartBlock(readFileSync(join(ROOT, 'README.md'), 'utf8'));
    expect(block).toContain('ssh ');
    const [hubPort, localPort] = [await freePort(), await freePort()];
    const script = block
      .replace(/127\.0\.0\.1:22\b/g, `127.0.0.1:${sshd.port}`)
      .replace(/\b8080\b/g, String(hubPort))
      .replace(/\b2222\b/g, String(localPort));

    const bin = join(dir, 'bin');
    const work = join(dir, 'work');
    mkdirSync(bin);
    mkdirSync(work);
    writeFileSync(join(bin, 'devstreams'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI_MAIN)} "$@"\n`);
    // The test's key and non-interactive options; the port and user come from the README's line.
    const args = sshd.sshArgs(0);
    const options = args.slice(0, -1).filter((_, i) => args[i] !== '-p' && args[i - 1] !== '-p');
    const realSsh = execFileSync('sh', ['-c', 'command -v ssh'], { encoding: 'utf8' }).trim();
    writeFileSync(join(bin, 'ssh'), `#!/bin/sh\nexec ${realSsh} ${options.map((a) => `'${a}'`).join(' ')} "$@" echo ${MARKER}\n`);
    chmodSync(join(bin, 'devstreams'), 0o755);
    chmodSync(join(bin, 'ssh'), 0o755);
    // The block as pasted, then the status of its last command; the background jobs end with the group.
    writeFileSync(join(dir, 'quickstart.sh'), `${script}\nstatus=$?\nkill $(jobs -p) 2>/dev/null\nwait\nexit $status\n`);

    const child = spawn('bash', [join(dir, 'quickstart.sh')], {
      cwd: work,
      detached: true, // its own process group, so that everything it started can be ended at once
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
        DEVSTREAMS_HOME: join(dir, 'home'),
        USER: os.userInfo().username,
      },
    });
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 60_000);
    const status = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    clearTimeout(timer);
    try {
      process.kill(-child.pid!, 'SIGTERM'); // anything the script left behind
    } catch {
      // the group is already gone
    }
    expect(out, err.slice(-3000)).toContain(MARKER);
    expect(status, err.slice(-3000)).toBe(0);
  }, 90_000);
});
