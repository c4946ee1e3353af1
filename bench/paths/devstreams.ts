// The devstreams tunnel path: service proxy -> hub -> device proxy -> target.
//
// REGISTRATION POINT for the tunnel team. Replace `unavailableReason` and `start` once the hub
// and the proxies exist (issue 4). The expected shape, on placement ctx.placement:
//   1. start the hub (a child process; `devstreams hub --port 0` printing its port) with a
//      throwaway registry and one device;
//   2. start the link emulators (paths/links.ts `startLinks`) for the hub-service leg
//      (service proxy -> hub) and the device-hub leg (device proxy -> hub), unless
//      ctx.placement.loopback;
//   3. start `devstreams device-proxy --allow 127.0.0.1:<each ctx.targets port>` dialing the
//      hub through its leg, and `devstreams service-proxy --forward 0:127.0.0.1:<port>` (one per
//      target, in TARGET_NAMES order) dialing the hub through the other leg;
//   4. return the service proxy's local ports, processes [{hub}, {device proxy}, {service proxy},
//      {link emulator}], nominalRttMs = relayedRttMs(placement), capacityMBps =
//      relayedCapacityMBps(placement), and `makeCold` that makes the service proxy drop its
//      device stream (so the TTFB scenario also measures a cold stream).
// Start children with procs.ts: `spawnNodeReady(script, args, role)` if the command prints a JSON
// ready line (then `npm run profile -- --role hub` can wrap it in clinic), else `spawnChild` +
// `waitForPort`. One `startLinks([{ targetPort: hubPort, leg: placement.hubService },
// { targetPort: hubPort, leg: placement.deviceHub }])` call gives both legs in one process: point
// the service proxy at ports[0] and the device proxy at ports[1].
// Nothing else in the bench needs to change: scenarios, report, goals and charts pick it up by id.
import type { BenchPath, RunningPath } from './types.js';

export const DEVSTREAMS_PATH_ID = 'devstreams';

export const devstreamsPath: BenchPath = {
  id: DEVSTREAMS_PATH_ID,
  title: 'devstreams tunnel (service proxy -> hub -> device proxy)',
  async unavailableReason() {
    return 'not available yet: the hub and the proxies (issue 4) are not built; see bench/paths/devstreams.ts';
  },
  async start(): Promise<RunningPath> {
    throw new Error('devstreams path not available yet');
  },
};
