// Reference path "node-relays": three blind Node relays in a chain, each its own process, where
// the tunnel has the service proxy, the hub and the device proxy. No mux, no records, no
// encryption: each process only reads a socket and writes what it read to the next (socket.pipe).
// Its rows are the floor of three Node processes that relay the ordinary way (streams, a fresh
// buffer per read): what the tunnel adds on top of them is its own cost, and a goal this row does
// not meet is out of reach of such a path on this machine, whatever the tunnel's layers do (a
// design with owned-buffer reads and fewer system calls could go below it). Loopback round trips and
// HTTP requests only: that is where the floor decides. (Not the first byte: each relay connects
// to the next when it accepts, three connects in series where the tunnel connects once.)
import { combineLegs } from '../link-emulator.js';
import { TARGET_NAMES, type TargetName } from '../targets.js';
import { type RunningLinks, startLinks } from './links.js';
import type { BenchPath, RunningPath } from './types.js';

export const NODE_RELAYS_PATH_ID = 'node-relays';

/** Processes in the chain: as many as the tunnel has on its path. */
export const NODE_RELAYS = 3;

export const nodeRelaysPath: BenchPath = {
  id: NODE_RELAYS_PATH_ID,
  title: `${NODE_RELAYS} blind Node relays in a chain, one process each (the floor of a three-process path of Node pipe() relays; loopback round trip and HTTP only)`,
  only: { scenarios: ['rtt', 'http'], placements: ['loopback'] },
  async unavailableReason() {
    return undefined;
  },
  async start(ctx): Promise<RunningPath> {
    const relays: RunningLinks[] = [];
    const stop = async (): Promise<void> => {
      for (const r of relays.splice(0).reverse()) await r.child.stop();
    };
    try {
      // Built from the target end: each relay's ports are where the one before it forwards.
      let next = TARGET_NAMES.map((t) => ctx.targets[t]);
      for (let i = 0; i < NODE_RELAYS; i++) {
        const relay = await startLinks(next.map((port) => ({ targetHost: '127.0.0.1', targetPort: port, leg: combineLegs([]) })));
        relays.push(relay);
        next = relay.ports;
      }
      const ports = Object.fromEntries(TARGET_NAMES.map((t, i) => [t, next[i] as number])) as Record<TargetName, number>;
      const roles = ['relay (device side)', 'relay (middle)', 'relay (service side)'];
      return {
        ports,
        processes: relays.map((r, i) => ({ pid: r.child.pid, role: roles[i] ?? `relay ${i + 1}` })),
        nominalRttMs: 0,
        capacityMBps: 0,
        stop,
      };
    } catch (err) {
      await stop();
      throw err;
    }
  },
};
