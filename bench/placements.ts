// Region placements: where device, hub and service sit, as emulated one-way delays and bandwidth per leg.
//
// Figures are medians of the inter-region round-trip tables the big public clouds publish
// (AWS, Azure and GCP each publish a region-to-region latency matrix; third-party probes agree
// within a few ms):
// - same region, across availability zones: 0.5-2 ms RTT;
// - Frankfurt - Dublin about 25 ms, Dublin - Paris about 18 ms, Frankfurt - Paris about 10 ms RTT;
// - Frankfurt - N. Virginia about 88 ms, N. Virginia - Oregon about 68 ms,
//   Frankfurt - Oregon about 150 ms RTT;
// - Frankfurt - London about 15 ms RTT.
// Cellular (device on LTE): OpenSignal's mobile network experience reports put the median 4G
// round trip of most countries at 30-60 ms, with tens of ms of variation between packets; Ookla's
// Speedtest Global Index puts median mobile speeds at tens of Mbit/s down and about 10 Mbit/s up.
// The leg here: 50 ms RTT, 0-20 ms jitter per direction (order kept, as the radio link's
// retransmission layer keeps it), and a symmetric 20 Mbit/s cap (the emulator caps both directions
// alike; 20 sits between the typical up- and downlink).
// Cellular with loss (`cellular-lossy`): the same LTE leg, and 1 % of TCP segments lost
// each way on it. LTE hides most radio loss below IP: HARQ and RLC acknowledged mode retransmit,
// and 3GPP TS 23.203 (policy and charging control, table 6.1.7) sets a packet error loss rate of
// 10^-6 for the default bearer of TCP traffic (QCI 8/9). What reaches TCP comes from congestion on
// a loaded cell and from handovers: Nguyen et al., "Towards Understanding TCP Performance on
// LTE/EPC Mobile Networks" (AllThingsCellular 2014, AT&T Labs and Utah), measured TCP losses as
// cell load rises and in seamless handovers, without one figure for all cells. 1 % each way is
// our stress setting for such a cell, not a measured median. The loss is real TCP
// loss on a veth pair in a network namespace (bench/netns.ts); delay, jitter and cap stay the
// user-space emulator's.
// One-way delay is half the RTT. The bandwidth cap models the slowest hop an operator usually
// pays for (a 100 Mbit/s site uplink); an uncapped leg is limited only by this machine.

/** One direction-symmetric network leg. */
export interface LegSpec {
  /** One-way delay in ms (each direction). */
  readonly oneWayMs: number;
  /** Extra uniform random delay 0..jitterMs per chunk; order is preserved. */
  readonly jitterMs: number;
  /** Bandwidth cap in Mbit/s per direction; 0 = uncapped. */
  readonly mbps: number;
  /**
   * Share of TCP segments lost each way, in percent (absent or 0: none). Not the user-space
   * emulator's doing: bench/paths/links.ts puts a veth crossing with real drops on the leg.
   */
  readonly lossPercent?: number;
}

/** Where the three parties sit. Legs: device-hub and hub-service for relayed paths, device-service for direct. */
export interface Placement {
  readonly id: string;
  readonly title: string;
  /** Where the figures come from, in words (goes to RESULTS.md). */
  readonly citation: string;
  /** True for the un-emulated loopback placement (no link emulator at all). */
  readonly loopback: boolean;
  readonly deviceHub: LegSpec;
  readonly hubService: LegSpec;
  readonly deviceService: LegSpec;
}

const NONE: LegSpec = { oneWayMs: 0, jitterMs: 0, mbps: 0 };
const leg = (rttMs: number, mbps = 0, jitterMs = 0): LegSpec => ({ oneWayMs: rttMs / 2, jitterMs, mbps });

export const PLACEMENTS: readonly Placement[] = [
  {
    id: 'loopback',
    title: 'loopback (no emulation)',
    citation: 'all three on this machine, no link emulator: the pure processing cost of each path',
    loopback: true,
    deviceHub: NONE,
    hubService: NONE,
    deviceService: NONE,
  },
  {
    id: 'same-region',
    title: 'same region',
    citation: 'device, hub and service in one cloud region, different availability zones: about 1-2 ms RTT per leg',
    loopback: false,
    deviceHub: leg(1.5, 1000),
    hubService: leg(1, 1000),
    deviceService: leg(1.5, 1000),
  },
  {
    id: 'continental',
    title: 'continental (hub far from both)',
    citation: 'device in Frankfurt, service in Paris, hub in Dublin: about 25, 18 and 10 ms RTT',
    loopback: false,
    deviceHub: leg(25, 1000),
    hubService: leg(18, 1000),
    deviceService: leg(10, 1000),
  },
  {
    id: 'intercontinental',
    title: 'intercontinental, 100 Mbit/s',
    citation: 'device in Frankfurt, hub in N. Virginia, service in Oregon: about 88, 68 and 150 ms RTT; 100 Mbit/s link',
    loopback: false,
    deviceHub: leg(88, 100, 1),
    hubService: leg(68, 100, 1),
    deviceService: leg(150, 100, 1),
  },
  {
    id: 'cellular',
    title: 'device on LTE',
    citation:
      'device on an LTE link, hub and service in Frankfurt: about 50 ms RTT with 0-20 ms jitter and 20 Mbit/s on the device leg (OpenSignal 4G latency, Ookla mobile speeds), 1.5 ms hub-service',
    loopback: false,
    deviceHub: leg(50, 20, 20),
    hubService: leg(1.5, 1000),
    deviceService: leg(51.5, 20, 20),
  },
  {
    id: 'cellular-lossy',
    title: 'device on LTE, 1 % loss',
    citation:
      'the cellular placement with 1 % of TCP segments lost each way on the device leg, real loss on a veth pair in a network namespace (a busy cell or handovers: 3GPP TS 23.203 QCI 8/9 targets 10^-6 after link-layer retransmission; Nguyen et al. 2014 measured TCP losses with cell load and handovers); needs root, skipped with a note elsewhere',
    loopback: false,
    deviceHub: { ...leg(50, 20, 20), lossPercent: 1 },
    hubService: leg(1.5, 1000),
    deviceService: { ...leg(51.5, 20, 20), lossPercent: 1 },
  },
  {
    id: 'hub-near-device',
    title: 'hub near the device',
    citation: 'device and hub in Frankfurt, service in London: about 1.5, 15 and 15 ms RTT',
    loopback: false,
    deviceHub: leg(1.5, 1000),
    hubService: leg(15, 1000),
    deviceService: leg(15, 1000),
  },
];

/** Round trip of a relayed path through the hub, from the emulated legs (ms). */
export function relayedRttMs(p: Placement): number {
  return 2 * (p.deviceHub.oneWayMs + p.hubService.oneWayMs);
}

/** Round trip of the direct device-service leg (ms). */
export function directRttMs(p: Placement): number {
  return 2 * p.deviceService.oneWayMs;
}

/** Capacity in MB/s (10^6 bytes) of the narrowest leg of a relayed path; 0 = uncapped. */
export function relayedCapacityMBps(p: Placement): number {
  const caps = [p.deviceHub.mbps, p.hubService.mbps].filter((m) => m > 0);
  return caps.length === 0 ? 0 : Math.min(...caps) / 8;
}

export function directCapacityMBps(p: Placement): number {
  return p.deviceService.mbps / 8;
}

/** True when a leg of the placement loses packets (it then needs lossUnavailableReason() to pass). */
export function hasLoss(p: Placement): boolean {
  return [p.deviceHub, p.hubService, p.deviceService].some((l) => (l.lossPercent ?? 0) > 0);
}

export function findPlacement(id: string): Placement | undefined {
  return PLACEMENTS.find((p) => p.id === id);
}
