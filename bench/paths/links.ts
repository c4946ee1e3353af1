// Starts one link-emulator child process hosting several relays; shared by the paths.
//
// A leg with `lossPercent` also crosses a lossy veth link (bench/netns.ts), for every path alike:
// the leg's delay line connects to a blind relay inside the link's namespace (that TCP
// connection loses segments both ways), which connects back over the veth, without loss, to a
// blind relay on the host end that reaches the leg's target:
//   client -> [delay line] -> nsAddr:relayPort (lossy) -> ns relay -> hostAddr:port -> [blind relay] -> target
// TCP recovers the loss on the veth's own round trip (tens of us), not on the leg's emulated one,
// which the delay line adds outside TCP: retransmission stalls (loss probes, 200 ms minimum
// retransmission timeouts, SYN retries after 1 s) show, the congestion window's long climb back
// over 50 ms does not.
import type { LinkEmulatorOptions } from '../link-emulator.js';
import { createLossyLink, type LossyLink } from '../netns.js';
import type { Placement } from '../placements.js';
import { benchScript, freePort, spawnNodeReady, type Child } from '../procs.js';

export interface RunningLinks {
  /** The link emulator; its stop() also ends the lossy link's relay and removes the link. */
  readonly child: Child;
  readonly ports: number[];
  /** The lossy veth link its lossy legs cross, if any (for its drop counters). */
  readonly lossy?: LossyLink;
}

const LINKS_SCRIPT = 'procs/links-main.js';
const encode = (specs: readonly LinkEmulatorOptions[]): string => Buffer.from(JSON.stringify(specs)).toString('base64url');

export async function startLinks(specs: readonly LinkEmulatorOptions[]): Promise<RunningLinks> {
  const lossy = specs.map((s) => s.leg.lossPercent ?? 0);
  if (lossy.every((l) => l === 0)) {
    const { child, ready } = await spawnNodeReady<{ ports: number[] }>(benchScript(LINKS_SCRIPT), [encode(specs)]);
    return { child, ports: ready.ports };
  }
  if (new Set(lossy.filter((l) => l > 0)).size > 1) throw new Error('lossy legs of one link emulator must share one loss rate');
  return startLossyLinks(specs, await createLossyLink(Math.max(...lossy)));
}

async function startLossyLinks(specs: readonly LinkEmulatorOptions[], link: LossyLink): Promise<RunningLinks> {
  const report = async (): Promise<void> => {
    // One line per link on the bench's progress stream: the loss it really applied.
    const d = await link.drops();
    process.stderr.write(
      `lossy link ${link.netns} (${link.lossPercent} % each way): dropped ${d.toNs} segments towards the legs' targets, ${d.toHost} back\n`,
    );
  };
  const stops: Array<() => Promise<void>> = [() => link.destroy(), report];
  const stop = async (): Promise<void> => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => undefined);
  };
  try {
    const lossyIdx = specs.flatMap((s, i) => ((s.leg.lossPercent ?? 0) > 0 ? [i] : []));
    const NONE = { oneWayMs: 0, jitterMs: 0, mbps: 0 };
    // Host: the specs as given (lossy ones now aim at the namespace relays), then one blind relay
    // per lossy leg on the host end of the veth, reaching the leg's real target.
    const hostSpecs: LinkEmulatorOptions[] = [
      ...specs.map((s, i) =>
        lossyIdx.includes(i) ? { ...s, targetHost: link.nsAddr, targetPort: link.relayPort(lossyIdx.indexOf(i)) } : s,
      ),
      ...lossyIdx.map((i) => ({
        targetHost: (specs[i] as LinkEmulatorOptions).targetHost,
        targetPort: (specs[i] as LinkEmulatorOptions).targetPort,
        leg: NONE,
        listenHost: link.hostAddr,
      })),
    ];
    const host = await spawnNodeReady<{ ports: number[] }>(benchScript(LINKS_SCRIPT), [encode(hostSpecs)]);
    stops.push(() => host.child.stop());
    const backPorts = host.ready.ports.slice(specs.length);
    const nsSpecs: LinkEmulatorOptions[] = lossyIdx.map((_, j) => ({
      targetHost: link.hostAddr,
      targetPort: backPorts[j] as number,
      leg: NONE,
      listenHost: link.nsAddr,
      listenPort: link.relayPort(j),
    }));
    const inNs = await link.spawnNodeReady<{ ports: number[] }>(benchScript(LINKS_SCRIPT), [encode(nsSpecs)]);
    stops.push(() => inNs.child.stop());
    return { child: { proc: host.child.proc, pid: host.child.pid, stop }, ports: host.ready.ports.slice(0, specs.length), lossy: link };
  } catch (err) {
    await stop();
    throw err;
  }
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
