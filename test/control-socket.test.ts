/**
 * ControlServer's socket file on real Unix sockets: a stopping master removes only its own file,
 * and --control-path never deletes or chmods what it did not make.
 */
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ControlServer, SessionSource, masterListens, removeStaleSocket } from '../src/proxy/index.js';

// No channel is asked for here: a source that would fail if it were.
const source = new SessionSource({ open: () => Promise.reject(new Error('not used')) });

describe('ControlServer socket file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'devstreams-ctl-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("a stopping master leaves its successor's socket in place", async () => {
    const path = join(dir, 'ctl', 'm.sock');
    const first = new ControlServer({ path, source });
    await first.listen();
    // The first master looked dead to a new one, which removed its file and listens there now.
    unlinkSync(path);
    const second = new ControlServer({ path, source });
    await second.listen();
    await first.close();
    expect(await masterListens(path)).toBe(true);
    await second.close();
    expect(existsSync(path)).toBe(false);
  });

  it('refuses a path that holds another file, and leaves the file and its directory as they were', async () => {
    const fp = join(dir, 'fp');
    mkdirSync(fp);
    chmodSync(fp, 0o755);
    const notes = join(fp, 'notes.txt');
    writeFileSync(notes, 'data\n');
    const server = new ControlServer({ path: notes, source });
    await expect(server.listen()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(() => removeStaleSocket(notes)).toThrow(/not a control socket/);
    expect(readFileSync(notes, 'utf8')).toBe('data\n');
    expect(statSync(fp).mode & 0o777).toBe(0o755);
  });

  it('keeps an existing directory mode, refuses one others can write to unless sticky, creates a missing one 700', async () => {
    const shared = join(dir, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    await expect(new ControlServer({ path: join(shared, 'a.sock'), source }).listen()).rejects.toMatchObject({ code: 'ERR_CONFIG' });
    chmodSync(shared, 0o1777);
    const sticky = new ControlServer({ path: join(shared, 'b.sock'), source });
    await sticky.listen();
    expect(statSync(shared).mode & 0o7777).toBe(0o1777);
    expect(statSync(join(shared, 'b.sock')).mode & 0o777).toBe(0o600);
    await sticky.close();
    const fresh = new ControlServer({ path: join(dir, 'new', 'c.sock'), source });
    await fresh.listen();
    expect(statSync(join(dir, 'new')).mode & 0o777).toBe(0o700);
    await fresh.close();
  });
});
