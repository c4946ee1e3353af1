/**
 * `--queue-target-ms` on both proxies (the delay-based in-flight controller, interactive first),
 * with `--pace-percent` (pacing beside interactive channels) set too: a bulk echo and many small
 * connections beside it arrive byte for byte through real CLI processes, and the options are
 * refused where they cannot work.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, runCli, startCli, type CliProcess } from './helpers/cli-process.js';
import { echoRoundTrip, startEchoServer, type Target } from './helpers/targets.js';
import { sha256 } from './helpers/session-pair.js';
import { resumeFromFlags } from '../src/cli/common.js';
import { delayControlledResume, resolveResumeConfig } from '../src/resume/index.js';

describe('--queue-target-ms', () => {
  let dir: string;
  let echo: Target;
  let hub: CliProcess;
  let device: CliProcess;
  let service: CliProcess;
  let port: number;
  const env = (): NodeJS.ProcessEnv => ({ DEVSTREAMS_HOME: join(dir, 'home') });

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'devstreams-qt-'));
    echo = await startEchoServer();
    hub = startCli(['hub', '--listen', '127.0.0.1:0', '--data', join(dir, 'hub')], env());
    await hub.waitFor('hub ready');
    const deviceCs = join(dir, 'device.cs');
    const serviceCs = join(dir, 'service.cs');
    expect(runCli(['registry', 'add', 'dev-qt', '--data', join(dir, 'hub'), '--out', deviceCs]).status).toBe(0);
    expect(runCli(['registry', 'service-string', '--data', join(dir, 'hub'), '--out', serviceCs]).status).toBe(0);
    expect(runCli(['key', 'authorize', runCli(['key', 'show'], env()).stdout.trim(), '--name', 'qt'], env()).status).toBe(0);
    device = startCli(
      [
        'device-proxy',
        '--connection-string-file',
        deviceCs,
        '--allow',
        `127.0.0.1:${echo.port}`,
        '--queue-target-ms',
        '1',
        '--pace-percent',
        '50',
      ],
      env(),
    );
    await device.waitFor('device proxy ready');
    service = startCli(
      [
        'service-proxy',
        '--connection-string-file',
        serviceCs,
        '--device-id',
        'dev-qt',
        '--forward',
        `0:127.0.0.1:${echo.port}`,
        '--queue-target-ms',
        '1',
        '--pace-percent',
        '50',
      ],
      env(),
    );
    await service.waitFor('service proxy ready');
    port = Number(/^forward 127\.0\.0\.1:(\d+) -> /m.exec(service.stdout())![1]);
    // Both ends say the controller is on (the sender runs it, the receiver acknowledges by bytes).
    expect(device.stderr()).toMatch(/"queueTargetMs":1\b/);
    expect(service.stderr()).toMatch(/"queueTargetMs":1\b/);
    expect(device.stderr()).toMatch(/"pacePercent":50\b/);
    expect(service.stderr()).toMatch(/"pacePercent":50\b/);
  }, 60_000);

  afterAll(async () => {
    await service?.stop();
    await device?.stop();
    await hub?.stop();
    await echo?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('carries a 24 MiB echo and 32 small connections beside it byte for byte', async () => {
    const bulk = randomBytes(24 * 1024 * 1024);
    const small = Array.from({ length: 32 }, () => randomBytes(64 + Math.floor(Math.random() * 4096)));
    const [big, ...rest] = await Promise.all([echoRoundTrip(port, bulk), ...small.map((p) => echoRoundTrip(port, p))]);
    expect(big!.hash).toBe(sha256(bulk));
    rest.forEach((r, i) => expect(r.hash).toBe(sha256(small[i]!)));
  }, 90_000);

  /** A service proxy without resumption, and a device proxy, each with a connection string that is never dialled. */
  const SERVICE_NO_RESUME = [
    'service-proxy',
    '--connection-string',
    'HostName=127.0.0.1:9;SharedAccessKeyName=service;SharedAccessKey=AAAAAAAAAAAAAAAAAAAAAA==',
    '--device-id',
    'x',
    '--forward',
    '0:127.0.0.1:9',
    '--no-resume',
  ];
  const DEVICE = ['device-proxy', '--connection-string', 'HostName=127.0.0.1:9;DeviceId=d;SharedAccessKey=AAAAAAAAAAAAAAAAAAAAAA=='];

  it('is refused beside --no-resume and with a value out of range', () => {
    const noResume = runCli([...SERVICE_NO_RESUME, '--queue-target-ms', '1']);
    expect([noResume.status, noResume.stderr.trim()]).toEqual([
      2,
      'devstreams: ERR_USAGE: --queue-target-ms needs resumable sessions: drop --no-resume',
    ]);
    const bad = runCli([...DEVICE, '--queue-target-ms', '0']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--queue-target-ms.*positive/);
    const paceNoResume = runCli([...SERVICE_NO_RESUME, '--pace-percent', '0']);
    expect([paceNoResume.status, paceNoResume.stderr.trim()]).toEqual([
      2,
      'devstreams: ERR_USAGE: --pace-percent needs resumable sessions: drop --no-resume',
    ]);
    for (const value of ['101', '-1', '2.5', 'x']) {
      const badPace = runCli([...DEVICE, '--pace-percent', value]);
      expect(badPace.status).toBe(2);
      expect(badPace.stderr).toMatch(/--pace-percent.*from 0 to 100/);
    }
  });

  it('gives the resumable layer what the options ask for, and the defaults when neither is given', () => {
    expect(resumeFromFlags(undefined)).toBeUndefined();
    expect(resumeFromFlags(undefined, 0)).toEqual({ interactivePacePercent: 0 });
    expect(resumeFromFlags(1, 50)).toEqual({ ...delayControlledResume(1), interactivePacePercent: 50 });
    expect(resolveResumeConfig(resumeFromFlags(undefined, 0)).interactivePacePercent).toBe(0);
  });
});
