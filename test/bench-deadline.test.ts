// Time bounds of the bench: a step that never ends is reported as timed out (with its name) and the
// report still renders, with that row marked failed; and the crypto module's TCP pair, which hung a
// full run, neither floods its receiver nor waits forever when the receiver goes away.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { StepTimeoutError, withDeadline } from '../bench/deadline.js';
import { PLACEMENTS } from '../bench/placements.js';
import { registerModule } from '../bench/report/registry.js';
import { renderReport } from '../bench/report/markdown.js';
import type { Scenario } from '../bench/scenarios/types.js';
import { collectModuleBounded, runScenarioBounded } from '../bench/steps.js';
import { FULL_BUDGET } from '../bench/config.js';
import type { RunningPath } from '../bench/paths/types.js';
import { ROOT, ensureBuilt } from './helpers/build.js';
import { fakeResults } from './helpers/bench-results.js';

/** A step that never settles: only its bound can end it. */
const never = (): Promise<never> => new Promise<never>(() => {});

const results = fakeResults;

describe('withDeadline', () => {
  it('rejects a step that never settles with a timeout naming the step, and aborts its signal', async () => {
    let seen: AbortSignal | undefined;
    const err = await withDeadline('module stuck', 10, (signal) => {
      seen = signal;
      return never();
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StepTimeoutError);
    expect((err as Error).message).toBe('timed out: module stuck gave no result within 10 ms');
    expect(seen?.aborted).toBe(true);
  });

  it("passes a step's value or error through untouched", async () => {
    await expect(withDeadline('fine', 60_000, async () => 42)).resolves.toBe(42);
    await expect(
      withDeadline('broken', 60_000, () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
  });
});

describe('bounded steps in the report', () => {
  it('a module that never finishes is stored as failed and its section says so', async () => {
    registerModule({ id: 'stuck-demo', title: 'Stuck demo module', order: 99, collect: never, render: () => 'never shown' });
    const data = await collectModuleBounded(
      { id: 'stuck-demo', title: 'Stuck demo module', order: 99, collect: never, render: () => 'never shown' },
      { quick: true, budget: FULL_BUDGET, progress: () => {} },
      10,
    );
    expect(data).toEqual({ error: 'timed out: module stuck-demo gave no result within 10 ms' });
    const md = renderReport(results({ modules: { 'stuck-demo': data } }), { charts: {}, jsonRel: 'x.json' });
    expect(md).toContain('## Stuck demo module\n\n**failed**: timed out: module stuck-demo gave no result within 10 ms');
  });

  it('a scenario round that never finishes becomes a failed row and the run goes on', async () => {
    const stuck: Scenario = {
      id: 'rtt',
      title: 'stuck',
      placements: 'loopback',
      columns: [{ metric: 'p50_us', label: 'p50 us', digits: 0 }],
      primary: { metric: 'p50_us', higherIsBetter: false },
      run: never,
    };
    const placement = PLACEMENTS[0]!;
    const rec = await runScenarioBounded(
      stuck,
      { pathId: 'direct', path: {} as RunningPath, placement, budget: FULL_BUDGET, progress: () => {} },
      1,
      10,
    );
    expect(rec).toEqual({
      path: 'direct',
      placement: placement.id,
      scenario: 'rtt',
      round: 1,
      metrics: {},
      error: `timed out: direct · ${placement.id} · rtt · round 1 gave no result within 10 ms`,
    });
    const md = renderReport(results({ scenarios: ['rtt'], records: [rec] }), { charts: {}, jsonRel: 'x.json' });
    expect(md).toMatch(/^\| loopback \| direct \| 0 \|.*\*\*failed\*\* in 1 of 1 rounds: timed out: direct · loopback · rtt · round 1/m);
  });
});

/**
 * Runs one crypto-bench throughput case from dist/ in a plain node process (the receiver child
 * needs compiled JS). From a file, not `node -e`: the case starts its receiver with the parent's
 * execArgv, which would carry the -e script along.
 */
function pairCase(secure: object, pair: object): Promise<{ ok?: { bytes: number }; error?: string }> {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'bench-pair-')), 'case.mjs');
  fs.writeFileSync(
    file,
    `
import { throughputCase } from ${JSON.stringify(path.join(ROOT, 'dist', 'bench', 'standalone', 'crypto-bench.js'))};
    throughputCase('workers case', 0.3, ${JSON.stringify(secure)}, ${JSON.stringify(pair)}).then(
      (r) => console.log(JSON.stringify({ ok: r })),
      (e) => console.log(JSON.stringify({ error: e.message })),
    );`,
  );
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [file], { cwd: ROOT, timeout: 60_000, killSignal: 'SIGKILL' }, (err, stdout) => {
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
      const line = stdout.trim().split('\n').pop() ?? '';
      if (line.startsWith('{')) resolve(JSON.parse(line) as { ok?: { bytes: number }; error?: string });
      else reject(new Error(`no result (${err?.message ?? 'no output'})`));
    });
  });
}

describe('crypto module TCP pair', () => {
  beforeAll(() => ensureBuilt(), 120_000);

  it('keeps what the receiver has waiting for its workers under its flood bound (a window, as the mux keeps)', async () => {
    // Without a window the sender runs ahead of the receiver's workers by up to the socket
    // buffers, past a 1.5 MiB backlog (and the old pair then hung); with a 1 MiB window the
    // backlog never passes 1 MiB + one 64 KiB message.
    const r = await pairCase(
      { suites: ['aes-128-gcm'], crypto: 'workers', workerThreads: 1, maxOpenBacklog: 1.5 * 1024 * 1024 },
      { windowBytes: 1024 * 1024, ackEveryBytes: 256 * 1024 },
    );
    expect(r.error).toBeUndefined();
    expect(r.ok?.bytes).toBeGreaterThan(0);
  }, 60_000);

  it('fails naming the case when the receiver closes, instead of waiting for its count forever', async () => {
    // A backlog bound below one record: the receiver refuses the first record and closes.
    const r = await pairCase({ suites: ['aes-128-gcm'], crypto: 'workers', workerThreads: 1, maxOpenBacklog: 1024 }, {});
    expect(r.ok).toBeUndefined();
    expect(r.error).toMatch(/^crypto case "workers case": /);
    expect(r.error).toMatch(/ERR_PROTOCOL_FLOOD|faster than they could be opened|closed|exited/);
  }, 60_000);
});
