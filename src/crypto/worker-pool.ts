/**
 * The process-wide piscina pools that seal and open records off the main thread, one per thread
 * count, created on first use and shared by every session (a pool per session would spawn
 * threads per stream). Also finds the compiled worker file, whether we run from dist/ or from the
 * TypeScript sources under vitest.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Piscina } from 'piscina';
import { DevstreamsError } from '../errors.js';

/**
 * piscina is loaded on the first pool, not with this module: sessions that seal inline (the
 * default) never need it, and its megabyte of heap would be walked by every major GC, which
 * the 64 KiB buffers of a bulk transfer trigger several times a second.
 */
function loadPiscina(): typeof Piscina {
  return (createRequire(import.meta.url)('piscina') as { Piscina: typeof Piscina }).Piscina;
}

const pools = new Map<number, Piscina>();

/** The worker's CommonJS entry (see seal-worker-entry.cts for why not the ES module itself). */
const WORKER_ENTRY = 'seal-worker-entry.cjs';

/**
 * Path of the compiled worker. From dist/ it sits next to this file. From TS sources (vitest,
 * tsx) the sibling is a .ts file that a worker thread cannot load, so we use the copy that
 * `npm run build` put in dist/src/crypto/.
 */
export function resolveWorkerFile(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const sibling = join(here, WORKER_ENTRY);
  if (existsSync(sibling)) return sibling;
  const built = join(resolve(here, '..', '..'), 'dist', 'src', 'crypto', WORKER_ENTRY);
  if (existsSync(built)) return built;
  throw new DevstreamsError('ERR_CONFIG', `crypto worker not found (looked for ${sibling} and ${built}); run \`npm run build\``);
}

/** The shared pool with `threads` threads (kept alive, never churned). */
export function getCryptoPool(threads: number): Piscina {
  let pool = pools.get(threads);
  if (!pool) {
    const PiscinaPool = loadPiscina();
    pool = new PiscinaPool({
      filename: resolveWorkerFile(),
      minThreads: threads,
      maxThreads: threads,
      // Keep threads parked between bursts: respawning one costs far more than a record.
      idleTimeout: 60_000,
      // No pool-level queue cap: piscina's 'auto' (threads^2) would fail tasks outright. Each
      // session bounds what it queues (seal high water; the mux's windows bound the open side).
    });
    // A worker that fails to start or crashes must not take the process down (an unhandled
    // 'error' event would); the task it held rejects and that session closes with ERR_INTERNAL.
    pool.on('error', () => {});
    pools.set(threads, pool);
  }
  return pool;
}

/** Destroys every pool (tests, bench, shutdown). Pending tasks reject. */
export async function closeCryptoPools(): Promise<void> {
  const all = [...pools.values()];
  pools.clear();
  await Promise.all(all.map((p) => p.destroy()));
}
