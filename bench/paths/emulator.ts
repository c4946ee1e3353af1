// Calibration path "emulator only": a blind relay through the same two emulated legs a relayed
// path crosses (hub-service, device-hub), with no tunnel. Its rows show what the link emulator
// itself adds at each emulated placement (timer granularity, copies), so a relayed path's
// `p50 - legs` can be read against it.
import { PLACEMENTS, relayedCapacityMBps, relayedRttMs } from '../placements.js';
import { TARGET_NAMES, type TargetName } from '../targets.js';
import { startRelayedLegs } from './links.js';
import type { BenchPath, RunningPath } from './types.js';

export const EMULATOR_PATH_ID = 'emulator';

export const emulatorPath: BenchPath = {
  id: EMULATOR_PATH_ID,
  title: 'emulator only: blind relay through the relayed legs, no tunnel (calibration)',
  only: { placements: PLACEMENTS.filter((p) => !p.loopback).map((p) => p.id) },
  async unavailableReason() {
    return undefined;
  },
  async start(ctx): Promise<RunningPath> {
    const links = await startRelayedLegs(
      ctx.placement,
      TARGET_NAMES.map((t) => ctx.targets[t]),
    );
    const ports = Object.fromEntries(TARGET_NAMES.map((t, i) => [t, links.ports[i] as number])) as Record<TargetName, number>;
    return {
      ports,
      processes: [{ pid: links.child.pid, role: 'link emulator' }],
      nominalRttMs: relayedRttMs(ctx.placement),
      capacityMBps: relayedCapacityMBps(ctx.placement),
      stop: () => links.child.stop(),
    };
  },
};
