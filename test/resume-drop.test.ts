import { afterEach, describe, expect, it } from 'vitest';
import { ChaosProxy } from '../scripts/chaos-proxy.js';
import { startTestHub, until } from './helpers/hub.js';
import { startEchoServer } from './helpers/targets.js';
import { pacedEcho, startTunnel } from './helpers/resume.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

describe('resumption across dropped WebSockets', () => {
  it('carries 16 connections byte for byte while both sides lose their streams', async () => {
    const hub = await startTestHub();
    cleanups.push(() => hub.close());
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    const svcChaos = await ChaosProxy.start(hub.hub.port);
    cleanups.push(() => svcChaos.close());
    const devChaos = await ChaosProxy.start(hub.hub.port);
    cleanups.push(() => devChaos.close());
    const tunnel = await startTunnel({
      serviceString: hub.serviceString,
      deviceString: hub.addDevice('dev-drop'),
      deviceId: 'dev-drop',
      targetPort: echo.port,
      serviceGateway: svcChaos.port,
      deviceGateway: devChaos.port,
    });
    cleanups.push(() => tunnel.close());

    const runs = Array.from({ length: 16 }, () => pacedEcho(tunnel.port, 1024 * 1024, 32 * 1024, 25));
    await until(() => tunnel.device.sessionCount === 1, 10_000, 'device session');
    // About time: the paced runs take about 0.8 s, and the drop must land in the middle of them.
    await new Promise((r) => setTimeout(r, 300));
    expect(svcChaos.dropAll()).toBeGreaterThan(0); // the service's stream (and HTTP) sockets
    await until(() => tunnel.events.some((e) => e.kind === 'resumed'), 10_000, 'first resume');
    await new Promise((r) => setTimeout(r, 200)); // the same: some traffic on the resumed stream first
    expect(devChaos.dropAll()).toBeGreaterThan(0); // the device's stream and control sockets
    const results = await Promise.all(runs);
    for (const r of results) {
      expect(r.error).toBeUndefined();
      expect(r.bytes).toBe(1024 * 1024);
      expect(r.received).toBe(r.sent);
    }
    expect(tunnel.events.filter((e) => e.kind === 'resumed').length).toBeGreaterThanOrEqual(2);
    expect(tunnel.device.resumeCount).toBeGreaterThanOrEqual(2);
    expect(tunnel.events.some((e) => e.kind === 'lost')).toBe(false);
  });
});
