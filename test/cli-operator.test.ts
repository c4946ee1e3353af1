/**
 * What an operator meets when something is wrong, through the real CLI as child processes:
 * the exit-code convention (2: fix the command, 1: a run-time failure), one message shape,
 * --version, a hub that is still starting, an unreachable or untrusted hub, wrong credentials,
 * an unknown device, a revoked key, and a device that connects late.
 */
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, runCli, startCli, type CliProcess } from './helpers/cli-process.js';
import { echoRoundTrip, startEchoServer, type Target } from './helpers/targets.js';
import { sha256 } from './helpers/session-pair.js';
import { until } from './helpers/until.js';

/** Resolves with the exit code once the process has exited. */
async function exitCode(p: CliProcess): Promise<number | null> {
  if (p.proc.exitCode === null && p.proc.signalCode === null) await once(p.proc, 'exit');
  return p.proc.exitCode;
}

/** A port nothing listens on (bound, read, released). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A SOCKS5 CONNECT to a domain-name target; resolves with the reply code (0 = succeeded, 2 = not allowed). */
async function socksConnect(port: number, host: string, targetPort: number): Promise<number> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  const replies: Buffer[] = [];
  let wanted = 2;
  const read = (): Promise<Buffer> =>
    new Promise((resolve) => {
      const take = (): void => {
        const all = Buffer.concat(replies);
        if (all.length < wanted) return;
        socket.off('data', onData);
        replies.length = 0;
        replies.push(all.subarray(wanted));
        resolve(all.subarray(0, wanted));
      };
      const onData = (c: Buffer): void => {
        replies.push(c);
        take();
      };
      socket.on('data', onData);
      take();
    });
  socket.write(Buffer.from([5, 1, 0]));
  await read();
  const name = Buffer.from(host);
  socket.write(Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([targetPort >> 8, targetPort & 0xff])]));
  wanted = 2;
  const reply = await read();
  socket.destroy();
  return reply[1]!;
}

/** The one-line failure shape every command uses. */
const FAILURE_LINE = /^devstreams: ERR_[A-Z_]+: .+$/m;

describe('devstreams CLI: failures say why, at once, with one exit-code convention', () => {
  let dir: string;
  let hub: CliProcess;
  let echo: Target;
  let deviceCs: string;
  let serviceCs: string;
  const procs: CliProcess[] = [];
  const env = (): NodeJS.ProcessEnv => ({ DEVSTREAMS_HOME: join(dir, 'home') });
  const start = (args: string[]): CliProcess => {
    const p = startCli(args, env());
    procs.push(p);
    return p;
  };
  /** The op-dev device proxy, allowing the echo server, trusting this home's service key. */
  const startEchoDevice = (): CliProcess => {
    const serviceKey = runCli(['key', 'show'], env()).stdout.trim();
    return start(['device-proxy', '--connection-string', deviceCs, '--allow', `127.0.0.1:${echo.port}`, '--service-key', serviceKey]);
  };
  /** A service proxy for op-dev forwarding a local port to the echo server, with `extra` flags. */
  const startEchoService = (extra: string[] = []): CliProcess =>
    start(['service-proxy', '--connection-string', serviceCs, '--device-id', 'op-dev', '--forward', `0:127.0.0.1:${echo.port}`, ...extra]);

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'devstreams-operator-'));
    echo = await startEchoServer();
    hub = start(['hub', '--listen', '127.0.0.1:0', '--data', join(dir, 'hub')]);
    await hub.waitFor('hub ready');
    deviceCs = runCli(['registry', 'add', 'op-dev', '--data', join(dir, 'hub')]).stdout.trim();
    serviceCs = runCli(['registry', 'service-string', '--data', join(dir, 'hub')]).stdout.trim();
  }, 60_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.stop()));
    await echo?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints the version with --version and -V', () => {
    const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
    for (const flag of ['--version', '-V']) {
      const r = runCli([flag]);
      expect(r.status).toBe(0);
      expect(r.stdout.trim()).toBe(version);
    }
  });

  it('usage errors exit 2 in the one message shape, and --log-level lists the valid levels', () => {
    const level = runCli(['hub', '--listen', '127.0.0.1:0', '--data', join(dir, 'x'), '--log-level', 'verbose']);
    expect(level.status).toBe(2);
    expect(level.stderr).toMatch(FAILURE_LINE);
    expect(level.stderr).toContain('ERR_USAGE');
    expect(level.stderr).toContain('trace, debug, info, warn, error, fatal, silent');
    expect(level.stderr).not.toContain('custom levels');
    const missing = runCli(['service-proxy', '--forward', '0:127.0.0.1:22']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/^devstreams: ERR_USAGE: required option '--device-id <id>' not specified$/m);
    const unknown = runCli(['registry', 'list', '--bogus']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/^devstreams: ERR_USAGE: unknown option '--bogus'$/m);
    const nothing = runCli(['service-proxy', '--device-id', 'x', '--connection-string', serviceCs]);
    expect(nothing.status).toBe(2);
    expect(nothing.stderr).toMatch(/^devstreams: ERR_CONFIG: nothing to do/m);
  });

  it('a port in use is the same error, exit 2, for the hub and the service proxy', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const h = runCli(['hub', '--listen', `127.0.0.1:${port}`, '--data', join(dir, 'hub2')]);
      expect(h.status).toBe(2);
      expect(h.stderr).toMatch(new RegExp(`^devstreams: ERR_CONFIG: cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE$`, 'm'));
      const s = runCli(
        ['service-proxy', '--connection-string', serviceCs, '--device-id', 'op-dev', '--forward', `${port}:127.0.0.1:22`],
        env(),
      );
      expect(s.status).toBe(2);
      expect(s.stderr).toMatch(new RegExp(`^devstreams: ERR_CONFIG: cannot listen on 127\\.0\\.0\\.1:${port}: EADDRINUSE$`, 'm'));
    } finally {
      taken.close();
    }
  });

  it('registry add run right after the hub was started in the background waits for it', async () => {
    const data = join(dir, 'late-hub');
    const add = start(['registry', 'add', 'early', '--data', data]);
    const lateHub = start(['hub', '--listen', '127.0.0.1:0', '--data', data]);
    expect(await exitCode(add)).toBe(0);
    expect(add.stdout()).toMatch(/^HostName=127\.0\.0\.1:\d+;DeviceId=early;SharedAccessKey=[A-Za-z0-9+/=]+;Transport=ws\n$/);
    await lateHub.stop();
    // With no hub at all it still ends, saying what to do.
    const none = runCli(['registry', 'add', 'nohub', '--data', join(dir, 'no-hub'), '--wait', '0.3']);
    expect(none.status).toBe(2);
    expect(none.stderr).toMatch(/^devstreams: ERR_CONFIG: no hub address recorded in .* after waiting/m);
  });

  it('a device proxy that cannot reach its hub says why on every retry, with the delay', async () => {
    const port = await closedPort();
    const cs = deviceCs.replace(/HostName=[^;]+/, `HostName=127.0.0.1:${port}`);
    const device = start(['device-proxy', '--connection-string', cs, '--allow', '127.0.0.1:1', '--key', join(dir, 'k1')]);
    await device.waitFor(`cannot reach hub 127.0.0.1:${port} (ECONNREFUSED`);
    await device.waitFor('retrying in');
    await device.stop();
  });

  it('a device proxy facing a self-signed hub certificate is told to pass --ca', async () => {
    const tdir = join(dir, 'tls-hub');
    const tlsHub = start(['hub', '--listen', '127.0.0.1:0', '--data', tdir, '--tls-self-signed']);
    await tlsHub.waitFor('hub ready');
    // A string without the certificate pin (HubCertSha256), as from --host or an older hub.
    const cs = runCli(['registry', 'add', 'tls-dev', '--data', tdir])
      .stdout.trim()
      .replace(/;HubCertSha256=[^;]*/, '');
    const device = start(['device-proxy', '--connection-string', cs, '--allow', '127.0.0.1:1', '--key', join(dir, 'k2')]);
    await device.waitFor('self-signed');
    expect(device.stderr()).toContain('--ca FILE');
    await device.stop();
    await tlsHub.stop();
  });

  it('a service proxy with a wrong key or an unknown device ends at start with the reason, exit 2', async () => {
    const wrongKey = serviceCs.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${randomBytes(32).toString('base64')}`);
    const bad = start(['service-proxy', '--connection-string', wrongKey, '--device-id', 'op-dev', '--forward', '0:127.0.0.1:22']);
    expect(await exitCode(bad)).toBe(2);
    expect(bad.stderr()).toMatch(/^devstreams: ERR_AUTH_INVALID: .+$/m);
    expect(bad.stdout()).toBe(''); // never claimed to be ready
    const typo = start([
      'service-proxy',
      '--connection-string',
      serviceCs,
      '--device-id',
      'op-dve',
      '--forward',
      '0:127.0.0.1:22',
      '--eager',
    ]);
    expect(await exitCode(typo)).toBe(2);
    expect(typo.stderr()).toMatch(/^devstreams: ERR_DEVICE_NOT_FOUND: device op-dve is not registered$/m);
  });

  it('a service proxy whose hub is down starts, and says why each connection fails', async () => {
    const port = await closedPort();
    const cs = serviceCs.replace(/HostName=[^;]+/, `HostName=127.0.0.1:${port}`);
    const svc = start(['service-proxy', '--connection-string', cs, '--device-id', 'op-dev', '--forward', `0:127.0.0.1:${echo.port}`]);
    await svc.waitFor('service proxy ready');
    expect(svc.stderr()).toContain(`cannot reach hub 127.0.0.1:${port} (ECONNREFUSED`);
    const local = Number(/^forward 127\.0\.0\.1:(\d+)/m.exec(svc.stdout())![1]);
    await echoRoundTrip(local, Buffer.from('x')).catch(() => undefined);
    await svc.waitFor('refused: cannot reach hub');
    await svc.stop();
  });

  it('a first connection waits for a device proxy that is still connecting', async () => {
    const svc = startEchoService(['--device-wait', '60', '--metrics-listen', '127.0.0.1:0']);
    await svc.waitFor('service proxy ready');
    expect(svc.stderr()).toContain('device op-dev is registered but offline');
    const local = Number(/^forward 127\.0\.0\.1:(\d+)/m.exec(svc.stdout())![1]);
    const data = randomBytes(50_000);
    const result = echoRoundTrip(local, data);
    await svc.waitFor('device op-dev is offline; waiting up to 60 s');
    const device = startEchoDevice();
    expect((await result).hash).toBe(sha256(data));
    // One info line per connection, when it ends, with what it carried (50,000 bytes each way).
    await svc.waitFor(`connection :${local} -> 127.0.0.1:${echo.port} closed after`);
    expect(svc.stderr()).toMatch(/connection :\d+ -> 127\.0\.0\.1:\d+ closed after [\d.]+ m?s, 50\.0 kB in, 50\.0 kB out/);
    await device.waitFor(`channel to 127.0.0.1:${echo.port} closed after`);
    expect(device.stderr()).toMatch(/channel to 127\.0\.0\.1:\d+ closed after [\d.]+ m?s, 50\.0 kB in, 50\.0 kB out/);
    // The service proxy's own metrics: the channel's open time, the stream's, the connection.
    await svc.waitFor('metrics 127.0.0.1:');
    const metricsPort = Number(/^metrics 127\.0\.0\.1:(\d+)$/m.exec(svc.stdout())![1]);
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(text).toMatch(/^devstreams_channel_open_seconds_count 1$/m);
    expect(text).toMatch(/^devstreams_stream_open_seconds_count 1$/m);
    expect(text).toMatch(/^devstreams_connections_total\{outcome="opened",code=""\} 1$/m);
    expect(text).toContain('nodejs_heap_size_used_bytes');
    // The hub's: process and runtime, the ring and pairing histograms, refusals by code.
    const hubHost = (
      JSON.parse(
        hub
          .stderr()
          .split('\n')
          .find((l) => l.includes('hub ready'))!,
      ) as { hostName: string }
    ).hostName;
    const hubText = await (await fetch(`http://${hubHost}/metrics`)).text();
    expect(hubText).toContain('process_cpu_user_seconds_total');
    expect(hubText).toContain('nodejs_eventloop_lag_seconds');
    expect(hubText).toMatch(/^devstreams_stream_ring_seconds_count\{outcome="accepted"\} [1-9]/m);
    expect(hubText).toMatch(/^devstreams_stream_pair_seconds_count [1-9]/m);
    expect(hubText).toMatch(/^devstreams_auth_failures_total\{endpoint="devices",code="ERR_AUTH_INVALID"\} [1-9]/m);
    // First contact pins the device key, and says so like ssh does.
    expect(svc.stderr()).toMatch(/Permanently added device op-dev \(x25519 [A-Za-z0-9+/=]+\) to the list of known devices/);
    await svc.stop();
    await device.stop();
  }, 60_000);

  it('a device proxy whose key is rotated under it exits with the reason instead of retrying in silence', async () => {
    const cs = runCli(['registry', 'add', 'op-rot', '--data', join(dir, 'hub')]).stdout.trim();
    const device = start(['device-proxy', '--connection-string', cs, '--allow', '127.0.0.1:1']);
    await device.waitFor('device proxy ready');
    const rot = runCli(['registry', 'rotate-key', 'op-rot', '--data', join(dir, 'hub')]);
    expect(rot.status).toBe(0);
    expect(await exitCode(device)).toBe(2);
    expect(device.stderr()).toMatch(/^devstreams: ERR_AUTH_INVALID: .+$/m);
    await hub.waitFor('device disconnected');
  }, 30_000);

  it('registry list shows online state, node and last seen, from the hub machine or with a service string', async () => {
    const cs = runCli(['registry', 'add', 'op-list', '--data', join(dir, 'hub')]).stdout.trim();
    const device = start(['device-proxy', '--connection-string', cs, '--allow', '127.0.0.1:1']);
    await device.waitFor('device proxy ready');
    const remote = runCli(['registry', 'list', '--connection-string', serviceCs]);
    expect(remote.status).toBe(0);
    expect(remote.stdout).toMatch(/^DEVICE\s+STATE\s+NODE\s+LAST SEEN$/m);
    expect(remote.stdout).toMatch(/^op-list\s+online\s+\S+\s+\d{4}-\d\d-\d\dT/m);
    const local = runCli(['registry', 'list', '--data', join(dir, 'hub'), '--json']);
    const rec = (JSON.parse(local.stdout) as { deviceId: string; connected: boolean; connectionString?: string }[]).find(
      (d) => d.deviceId === 'op-list',
    );
    expect(rec).toMatchObject({ connected: true });
    expect(rec).not.toHaveProperty('connectionString');
    await device.stop();
    // The hub notices the closed control socket on its own time: ask until it has.
    let after = '';
    for (let i = 0; i < 50 && !/^op-list\s+offline/m.test(after); i++) {
      after = runCli(['registry', 'list', '--connection-string', serviceCs]).stdout;
      if (!/^op-list\s+offline/m.test(after)) await new Promise((r) => setTimeout(r, 200));
    }
    expect(after).toMatch(/^op-list\s+offline\s+-\s+\d{4}-/m);
    expect(runCli(['registry', 'list', '--help']).stdout).not.toContain('--gateway');
  }, 30_000);

  it('Ctrl-C on the demo with a connection open says what it waits for; a second Ctrl-C forces', async () => {
    const demo = start(['demo', '--ssh-port', '0']);
    await demo.waitFor('Ctrl-C stops everything');
    const echoPort = Number(/nc 127\.0\.0\.1 (\d+)/.exec(demo.stdout())![1]);
    const socket = net.connect(echoPort, '127.0.0.1');
    socket.on('error', () => {});
    socket.write('hold');
    await once(socket, 'data'); // the echo came back: the connection is open through the tunnel
    demo.proc.kill('SIGINT');
    await demo.waitFor('waiting for 1 connection to close; Ctrl-C again to force');
    demo.proc.kill('SIGINT');
    expect(await exitCode(demo)).toBe(130);
    socket.destroy();
  }, 30_000);

  it('hub --metrics-listen serves /metrics on its own listener and not on the hub listener', async () => {
    const mhub = start(['hub', '--listen', '127.0.0.1:0', '--data', join(dir, 'metrics-hub'), '--metrics-listen', '127.0.0.1:0']);
    await mhub.waitFor('hub ready');
    const url = /metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(mhub.stderr())![1]!;
    const text = await (await fetch(url)).text();
    expect(text).toContain('devstreams_connected_devices 0');
    expect(text).toContain('process_resident_memory_bytes');
    const hubHost = (
      JSON.parse(
        mhub
          .stderr()
          .split('\n')
          .find((l) => l.includes('hub ready'))!,
      ) as { hostName: string }
    ).hostName;
    expect((await fetch(`http://${hubHost}/metrics`)).status).toBe(404);
    await mhub.stop();
  });

  it('a client that resets as soon as it connects is logged as ended, never as refused (a TCP health check does this)', async () => {
    const device = startEchoDevice();
    await device.waitFor('device proxy ready');
    const svc = startEchoService();
    await svc.waitFor('service proxy ready');
    const local = Number(/^forward 127\.0\.0\.1:(\d+)/m.exec(svc.stdout())![1]);
    // Most of these resets reach the proxy while the OPEN still waits for the client's first bytes.
    for (let i = 0; i < 20; i++) {
      const s = net.connect(local, '127.0.0.1');
      await once(s, 'connect');
      s.resetAndDestroy();
    }
    const lines = (): string[] =>
      svc
        .stderr()
        .split('\n')
        .filter((l) => l.includes(`connection :${local} -> `));
    await until(() => lines().length >= 20, 10_000, 'a line for each of the 20 connections');
    expect(lines()).toHaveLength(20);
    expect(lines().filter((l) => l.includes('refused'))).toEqual([]);
    await svc.stop();
    await device.stop();
  }, 30_000);

  it('SOCKS to localhost:PORT where only 127.0.0.1:PORT is allowed is refused, and the log says names are not resolved', async () => {
    const device = startEchoDevice();
    await device.waitFor('device proxy ready');
    const svc = start(['service-proxy', '--connection-string', serviceCs, '--device-id', 'op-dev', '--socks', '0']);
    await svc.waitFor('service proxy ready');
    const socksPort = Number(/^socks 127\.0\.0\.1:(\d+)$/m.exec(svc.stdout())![1]);
    expect(await socksConnect(socksPort, '127.0.0.1', echo.port)).toBe(0);
    expect(await socksConnect(socksPort, 'localhost', echo.port)).toBe(2);
    await svc.waitFor('names are matched as written, not resolved');
    await svc.stop();
    await device.stop();
  }, 30_000);

  it('--log-format pretty (the default at a terminal) reads as time, level, message', async () => {
    const p = start(['hub', '--listen', '127.0.0.1:0', '--data', join(dir, 'pretty-hub'), '--log-format', 'pretty']);
    await p.waitFor('hub ready');
    expect(p.stderr()).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: hub ready/m);
    expect(p.stderr()).not.toMatch(/^\{"level"/m);
    await p.stop();
  });

  it('service-proxy --help says what SIGUSR2 gives a user; the demo says what to install when nc is missing', async () => {
    const help = runCli(['service-proxy', '--help']);
    expect(help.stdout).toContain('SIGUSR2 starts afresh without');
    expect(help.stdout).not.toContain('the bench uses it');
    const demo = startCli(['demo', '--ssh-port', '0'], { ...env(), PATH: '/nonexistent' });
    procs.push(demo);
    await demo.waitFor('Ctrl-C stops everything');
    expect(demo.stdout()).toMatch(/nc 127\.0\.0\.1 \d+ +\(nc is not installed here: apt-get install netcat-openbsd\)/);
    await demo.stop();
  });
});
