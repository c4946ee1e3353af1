/**
 * Each proxy runs one full garbage collection once its device stream is open (src/cli/startup-gc.ts),
 * so the start-up's garbage is not collected on one of the first connections; DEVSTREAMS_STARTUP_GC=0
 * turns it off. Seen from outside through V8's own GC trace (DEVSTREAMS_V8_FLAGS adds --trace-gc):
 * a collection asked for by code is traced with the reason "testing".
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, runCli, startCli, type CliProcess } from './helpers/cli-process.js';
import { until } from './helpers/hub.js';
import { echoRoundTrip, startEchoServer, type Target } from './helpers/targets.js';
import { sha256 } from './helpers/session-pair.js';

/** Full collections code asked for, in a process's --trace-gc output. */
const asked = (out: string): number => out.split('\n').filter((l) => /Mark-Compact.*testing/.test(l)).length;

describe('CLI start-up garbage collection', () => {
  let dir: string;
  let echo: Target;
  let procs: CliProcess[] = [];

  beforeAll(async () => {
    ensureBuilt();
    echo = await startEchoServer();
  }, 60_000);

  afterEach(async () => {
    for (const p of procs) await p.stop();
    procs = [];
    rmSync(dir, { recursive: true, force: true });
  });

  /** A hub, a device proxy and a service proxy (--eager) with `gc` as DEVSTREAMS_STARTUP_GC; resolves once the stream is open. */
  async function tunnel(gc: string | undefined): Promise<{ device: CliProcess; service: CliProcess; port: number }> {
    dir = mkdtempSync(join(tmpdir(), 'devstreams-sgc-'));
    const env: NodeJS.ProcessEnv = {
      DEVSTREAMS_HOME: join(dir, 'home'),
      DEVSTREAMS_V8_FLAGS: '--always-sparkplug --trace-gc',
      DEVSTREAMS_STARTUP_GC: gc,
    };
    const hub = startCli(['hub', '--listen', '127.0.0.1:0', '--data', join(dir, 'hub')], env);
    procs.push(hub);
    await hub.waitFor('hub ready');
    const deviceCs = join(dir, 'device.cs');
    const serviceCs = join(dir, 'service.cs');
    expect(runCli(['registry', 'add', 'dev-sgc', '--data', join(dir, 'hub'), '--out', deviceCs]).status).toBe(0);
    expect(runCli(['registry', 'service-string', '--data', join(dir, 'hub'), '--out', serviceCs]).status).toBe(0);
    expect(runCli(['key', 'authorize', runCli(['key', 'show'], env).stdout.trim(), '--name', 'sgc'], env).status).toBe(0);
    const device = startCli(['device-proxy', '--connection-string-file', deviceCs, '--allow', `127.0.0.1:${echo.port}`], env);
    procs.push(device);
    await device.waitFor('device proxy ready');
    const service = startCli(
      [
        'service-proxy',
        '--connection-string-file',
        serviceCs,
        '--device-id',
        'dev-sgc',
        '--forward',
        `0:127.0.0.1:${echo.port}`,
        '--eager',
      ],
      env,
    );
    procs.push(service);
    await service.waitFor('"state":"open"');
    await device.waitFor('device stream open');
    const port = Number(/^forward 127\.0\.0\.1:(\d+) -> /m.exec(service.stdout())![1]);
    return { device, service, port };
  }

  it('collects once in each proxy after its stream opens, and connections go through after it', async () => {
    const { device, service, port } = await tunnel(undefined);
    await until(() => asked(service.stdout()) > 0 && asked(device.stdout()) > 0, 15_000, 'start-up collections');
    for (let i = 0; i < 3; i++) {
      const data = randomBytes(10_000);
      expect((await echoRoundTrip(port, data)).hash).toBe(sha256(data));
    }
    expect(asked(service.stdout())).toBe(1);
    expect(asked(device.stdout())).toBe(1);
  }, 60_000);

  it('does not collect with DEVSTREAMS_STARTUP_GC=0', async () => {
    const { device, service, port } = await tunnel('0');
    const data = randomBytes(10_000);
    expect((await echoRoundTrip(port, data)).hash).toBe(sha256(data));
    expect(asked(service.stdout())).toBe(0);
    expect(asked(device.stdout())).toBe(0);
  }, 60_000);
});
