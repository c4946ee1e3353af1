// The worker pool must load its worker from compiled JS: run the built library (dist/) in a
// plain node process, with workers, as a deployed proxy would.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { resolveWorkerFile } from '../src/crypto/worker-pool.js';
import { ensureCryptoWorkerBuilt } from './crypto-helpers.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const distEntry = join(root, 'dist', 'src', 'crypto', 'index.js');

/** Builds dist/ when any src/crypto source is newer than its compiled file. */
function ensureBuilt(): void {
  const srcDir = join(root, 'src', 'crypto');
  const stale = readdirSync(srcDir).some((f) => {
    // .cts compiles to .cjs: mapping it to itself found no output and rebuilt every run (a minute under load).
    const out = join(root, 'dist', 'src', 'crypto', f.replace(/\.cts$/, '.cjs').replace(/\.ts$/, '.js'));
    return !existsSync(out) || statSync(out).mtimeMs < statSync(join(srcDir, f)).mtimeMs;
  });
  if (stale)
    execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(root, 'tsconfig.build.json')], {
      cwd: root,
      stdio: 'pipe',
    });
}

describe('crypto worker from dist', () => {
  it('from TS sources, the pool resolves the compiled worker in dist/', () => {
    ensureCryptoWorkerBuilt();
    expect(resolveWorkerFile()).toBe(join(root, 'dist', 'src', 'crypto', 'seal-worker-entry.cjs'));
  });

  it('the built library seals on workers in a plain node process', () => {
    ensureBuilt();
    const script = `
      import { secureInitiator, secureResponder, generateStaticKeyPair, acceptAnyKey, closeCryptoPools } from ${JSON.stringify(distEntry)};
      import { createMemoryTransportPair } from ${JSON.stringify(join(root, 'dist', 'src', 'transport', 'memory.js'))};
      const [a, b] = createMemoryTransportPair();
      const o = { verifyPeer: acceptAnyKey, crypto: 'workers', workerThreads: 2 };
      const [sa, sb] = await Promise.all([secureInitiator(a, { ...o, staticKeys: generateStaticKeyPair() }), secureResponder(b, { ...o, staticKeys: generateStaticKeyPair() })]);
      const got = [];
      const done = new Promise((r) => sb.attach({ onMessage: (m) => { got.push(m.toString()); if (got.length === 50) r(); }, onDrain() {}, onClose() {} }));
      sa.attach({ onMessage() {}, onDrain() {}, onClose() {} });
      for (let i = 0; i < 50; i++) sa.send([Buffer.from('m' + i)]);
      await done;
      sa.close();
      await closeCryptoPools();
      console.log(sa.session.crypto, got.join(',') === Array.from({ length: 50 }, (_, i) => 'm' + i).join(','));
    `;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, encoding: 'utf8', timeout: 20_000 });
    expect(out.trim()).toBe('workers true');
  });
});
