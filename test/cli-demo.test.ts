import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ensureBuilt, runCli, startCli } from './helpers/cli-process.js';
import { echoRoundTrip } from './helpers/targets.js';
import { sha256 } from './helpers/session-pair.js';
import { until } from './helpers/hub.js';

describe('devstreams demo and proxy command errors', () => {
  it('serves the device page and echo through the tunnel, and stops cleanly on Ctrl-C', async () => {
    ensureBuilt();
    const demo = startCli(['demo', '--ssh-port', '0']);
    try {
      await demo.waitFor('Ctrl-C stops everything');
      const web = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(demo.stdout())![0];
      const page = await (await fetch(web)).text();
      expect(page).toContain('demo-device');
      const echoPort = Number(/nc 127\.0\.0\.1 (\d+)/.exec(demo.stdout())![1]);
      const data = randomBytes(200_000);
      expect((await echoRoundTrip(echoPort, data)).hash).toBe(sha256(data));
      demo.proc.kill('SIGINT');
      await until(() => demo.proc.exitCode !== null, 10_000, 'demo exit');
      expect(demo.proc.exitCode).toBe(0);
    } finally {
      await demo.stop();
    }
  }, 30_000);

  it('explains bad flags and bad connection strings in one line with a non-zero exit', () => {
    const noCs = runCli(['service-proxy', '--device-id', 'x', '--forward', '2222:127.0.0.1:22'], { DEVSTREAMS_CONNECTION_STRING: '' });
    expect(noCs.status).toBe(2);
    expect(noCs.stderr).toMatch(/^devstreams: ERR_CONNECTION_STRING: .*--connection-string/m);
    const badForward = runCli([
      'service-proxy',
      '--connection-string',
      'HostName=h;SharedAccessKeyName=service;SharedAccessKey=AAAAAAAAAAAAAAAAAAAAAA==',
      '--device-id',
      'x',
      '--forward',
      '2222:22',
    ]);
    expect(badForward.status).toBe(2);
    expect(badForward.stderr).toContain('expected [BIND:]LPORT:HOST:PORT');
    const badCs = runCli(['device-proxy', '--connection-string', 'HostName=h;DeviceId=;SharedAccessKey=x', '--allow', '127.0.0.1:22']);
    expect(badCs.status).toBe(2);
    expect(badCs.stderr.trim().split('\n')).toHaveLength(1);
    expect(badCs.stderr).toContain('ERR_CONNECTION_STRING');
    const badAllow = runCli([
      'device-proxy',
      '--connection-string',
      'HostName=h;DeviceId=d;SharedAccessKey=AAAAAAAAAAAAAAAAAAAAAA==',
      '--allow',
      'nohost',
    ]);
    expect(badAllow.status).toBe(2);
    expect(badAllow.stderr).toContain('bad --allow entry "nohost"');
    const help = runCli(['service-proxy', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Examples:');
  });
});
