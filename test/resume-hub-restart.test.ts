import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { rmSync } from 'node:fs';
import { tempDir, until } from './helpers/hub.js';
import { startEchoServer } from './helpers/targets.js';
import { pacedEcho, startTunnel } from './helpers/resume.js';
import { HubProcess, cli, ensureBuilt, freePort } from './helpers/hub-process.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

beforeAll(() => ensureBuilt(), 180_000);

describe('resumption across a hub restart', () => {
  it('carries 16 connections byte for byte through a hub killed with SIGKILL and restarted', async () => {
    const dir = tempDir();
    cleanups.push(async () => rmSync(dir, { recursive: true, force: true }));
    const hub = new HubProcess(await freePort(), dir);
    await hub.start();
    cleanups.push(() => hub.stop());
    const deviceString = cli('registry', 'add', 'dev-restart', '--data', dir);
    const serviceString = cli('registry', 'service-string', '--data', dir);
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    const tunnel = await startTunnel({ serviceString, deviceString, deviceId: 'dev-restart', targetPort: echo.port });
    cleanups.push(() => tunnel.close());

    const runs = Array.from({ length: 16 }, () => pacedEcho(tunnel.port, 1024 * 1024, 32 * 1024, 25));
    await until(() => tunnel.device.sessionCount === 1, 10_000, 'device session');
    // About time: the paced runs take about 0.8 s; the hub dies in the middle of them and stays
    // down for a while (an outage, not an instant restart).
    await new Promise((r) => setTimeout(r, 300));
    await hub.kill();
    await new Promise((r) => setTimeout(r, 300));
    await hub.start(); // same port, same data directory: the registry and keys are back
    const results = await Promise.all(runs);
    for (const r of results) {
      expect(r.error).toBeUndefined();
      expect(r.bytes).toBe(1024 * 1024);
      expect(r.received).toBe(r.sent);
    }
    expect(tunnel.events.some((e) => e.kind === 'resumed')).toBe(true);
    expect(tunnel.events.some((e) => e.kind === 'lost')).toBe(false);
    expect(tunnel.device.resumeCount).toBeGreaterThanOrEqual(1);
  }, 60_000);
});
