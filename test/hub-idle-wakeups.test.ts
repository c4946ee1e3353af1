// An idle hub sleeps: with no streams its event loop wakes for its own timers only, not 100 times a
// second for the runtime metrics' event-loop-delay monitor (prom-client samples every 10 ms by
// default; the hub exposes those metrics on /metrics).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENT_LOOP_MONITOR_MS } from '../src/util/runtime-metrics.js';
import { HubProcess, ensureBuilt, freePort } from './helpers/hub-process.js';

/** Voluntary context switches of a process's main thread: each is one sleep in epoll and a wake-up. */
function wakeUps(pid: number): number {
  const m = /^voluntary_ctxt_switches:\s+(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1]);
}

describe('an idle hub', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ds-idle-hub-'));
  let hub: HubProcess;

  beforeAll(async () => {
    ensureBuilt();
    hub = new HubProcess(await freePort(), dir);
    await hub.start();
  }, 30_000);
  afterAll(async () => {
    await hub.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves its runtime metrics and wakes far less often than every 10 ms', async () => {
    const metrics = await (await fetch(`http://127.0.0.1:${hub.port}/metrics`)).text();
    expect(metrics).toContain('nodejs_eventloop_lag_p99_seconds');
    const pid = hub.pid as number;
    const seconds = 2;
    const before = wakeUps(pid);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    const woke = wakeUps(pid) - before;
    // A 10 ms monitor alone is 200 wake-ups in 2 s; at EVENT_LOOP_MONITOR_MS it is 20, and the
    // hub's own timers add a few.
    expect(EVENT_LOOP_MONITOR_MS).toBeGreaterThanOrEqual(100);
    expect(woke).toBeLessThan(((seconds * 1000) / 10) * 0.5);
  });
});
