// Starts one link-emulator child process hosting several relays; shared by the paths.
import type { LinkEmulatorOptions } from '../link-emulator.js';
import type { Placement } from '../placements.js';
import { benchScript, freePort, spawnNodeReady, type Child } from '../procs.js';

export interface RunningLinks {
  readonly child: Child;
  readonly ports: number[];
}

export async function startLinks(specs: readonly LinkEmulatorOptions[]): Promise<RunningLinks> {
  const { child, ready } = await spawnNodeReady<{ ports: number[] }>(benchScript('procs/links-main.js'), [
    Buffer.from(JSON.stringify(specs)).toString('base64url'),
  ]);
  return { child, ports: ready.ports };
}

/**
 * The relayed legs of a placement as two delay lines in series, per target: service -> relay
 * (hub-service leg) -> relay -> device (device-hub leg), in one link-emulator process like the
 * tunnel's two legs. Every relayed path (tunnel, OpenSSH, emulator only) crosses the same
 * emulated hops. Returns the service-side port per target, in order.
 */
export async function startRelayedLegs(placement: Placement, targetPorts: readonly number[]): Promise<RunningLinks> {
  const inner = await Promise.all(targetPorts.map(() => freePort()));
  const specs: LinkEmulatorOptions[] = [
    ...targetPorts.map((port, i) => ({
      targetHost: '127.0.0.1',
      targetPort: port,
      leg: placement.deviceHub,
      listenPort: inner[i] as number,
    })),
    ...inner.map((port) => ({ targetHost: '127.0.0.1', targetPort: port, leg: placement.hubService })),
  ];
  const links = await startLinks(specs);
  return { child: links.child, ports: links.ports.slice(targetPorts.length) };
}
