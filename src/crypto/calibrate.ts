/**
 * `crypto: 'auto'`: a short start-up measurement (well under 200 ms, once per process per suite
 * and thread count) of sealing 16 full records (about 1 MiB) inline against the worker pool, picking
 * the faster. The pool's thread start-up is paid once before timing, since a long-lived process
 * pays it once too.
 */
import { randomBytes } from 'node:crypto';
import { SUITE_KEY_SIZE, recordNonce, sealParts, type RecordSuite } from './aead.js';
import { AUTO_CALIBRATION_BUDGET_MS, DEFAULT_WORKER_BATCH_BYTES, MAX_RECORD_PLAINTEXT, RECORD_HEADER_SIZE } from './constants.js';
import { OrderedOffload } from './offload.js';
import { encodeRecordHeader } from './record-format.js';
import { getCryptoPool } from './worker-pool.js';

/** What `auto` measured and chose. */
export interface CalibrationResult {
  mode: 'inline' | 'workers';
  /** Bytes per second sealing inline. */
  inline: number;
  /** Bytes per second through the pool (0 when the pool could not be used). */
  workers: number;
}

const cache = new Map<string, Promise<CalibrationResult>>();

/** Measures (once) and returns the faster mode. */
export async function chooseCryptoMode(suite: RecordSuite, threads: number): Promise<'inline' | 'workers'> {
  return (await calibrate(suite, threads)).mode;
}

/** The measurement behind `auto`, cached per suite and thread count. */
export function calibrate(suite: RecordSuite, threads: number): Promise<CalibrationResult> {
  const id = `${suite}/${threads}`;
  let p = cache.get(id);
  if (!p) {
    p = measure(suite, threads);
    cache.set(id, p);
  }
  return p;
}

async function measure(suite: RecordSuite, threads: number): Promise<CalibrationResult> {
  const key = randomBytes(SUITE_KEY_SIZE[suite]);
  const iv = randomBytes(12);
  const payload = randomBytes(MAX_RECORD_PLAINTEXT);
  const records = 16; // 1 MiB
  const deadline = performance.now() + AUTO_CALIBRATION_BUDGET_MS;

  const sealInline = (n: number): void => {
    for (let i = 0; i < n; i++) sealParts(suite, key, recordNonce(iv, i), encodeRecordHeader(0, i), [payload]);
  };
  sealInline(4); // warm-up: JIT and OpenSSL context set-up, as the workers get theirs
  const t0 = performance.now();
  sealInline(records);
  const inline = (records * payload.length) / ((performance.now() - t0) / 1000);

  let workers = 0;
  try {
    const pool = getCryptoPool(threads);
    const timeLeft = (): number => deadline - performance.now();
    // Warm-up: starts the threads and loads the worker module.
    await runSeal(pool, suite, key, iv, payload, threads, timeLeft());
    const t1 = performance.now();
    if (await runSeal(pool, suite, key, iv, payload, records, timeLeft())) {
      workers = (records * payload.length) / ((performance.now() - t1) / 1000);
    }
  } catch {
    workers = 0; // no worker file (not built) or no threads: inline it is
  }
  return { mode: workers > inline ? 'workers' : 'inline', inline, workers };
}

/** Seals `records` records through the pool; false if it did not finish within `budgetMs`. */
function runSeal(
  pool: ReturnType<typeof getCryptoPool>,
  suite: RecordSuite,
  key: Buffer,
  iv: Buffer,
  payload: Buffer,
  records: number,
  budgetMs: number,
): Promise<boolean> {
  return new Promise((resolve, reject) => {
    if (budgetMs <= 0) {
      resolve(false);
      return;
    }
    let left = records;
    const timer = setTimeout(() => {
      offload.stop();
      resolve(false);
    }, budgetMs);
    const offload = new OrderedOffload(
      pool,
      'seal',
      suite,
      DEFAULT_WORKER_BATCH_BYTES,
      (out) => {
        left -= out.results.length;
        if (left === 0) {
          clearTimeout(timer);
          resolve(true);
        }
      },
      (err) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
    for (let i = 0; i < records; i++) {
      const header = encodeRecordHeader(0, i);
      offload.push({ parts: [header, payload], size: RECORD_HEADER_SIZE + payload.length, key, nonce: recordNonce(iv, i) });
    }
  });
}
