// The baseline: connect straight to the target, through the device-service link emulator when the
// placement is emulated.
import { directCapacityMBps, directRttMs } from '../placements.js';
import { TARGET_NAMES, type TargetName } from '../targets.js';
import { startLinks } from './links.js';
import type { BenchPath, RunningPath } from './types.js';

export const directPath: BenchPath = {
  id: 'direct',
  title: 'direct TCP',
  async unavailableReason() {
    return undefined;
  },
  async start(ctx): Promise<RunningPath> {
    if (ctx.placement.loopback) {
      return {
        ports: { ...ctx.targets },
        processes: [],
        nominalRttMs: 0,
        capacityMBps: 0,
        async stop() {},
      };
    }
    const links = await startLinks(
      TARGET_NAMES.map((t) => ({ targetHost: '127.0.0.1', targetPort: ctx.targets[t], leg: ctx.placement.deviceService })),
    );
    const ports = Object.fromEntries(TARGET_NAMES.map((t, i) => [t, links.ports[i] as number])) as Record<TargetName, number>;
    return {
      ports,
      processes: [{ pid: links.child.pid, role: 'link emulator' }],
      nominalRttMs: directRttMs(ctx.placement),
      capacityMBps: directCapacityMBps(ctx.placement),
      stop: () => links.child.stop(),
    };
  },
};
