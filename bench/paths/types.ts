// The path abstraction: a way to reach the targets (direct TCP, OpenSSH -L, the devstreams tunnel).
// A path starts its processes for one placement and exposes, for each target, a local 127.0.0.1
// port that reaches it. Scenarios only ever talk to those local ports.
import type { Placement } from '../placements.js';
import type { ProcessRef } from '../procs.js';
import type { TargetName, TargetPorts } from '../targets.js';

export interface PathStartContext {
  /** Where each target listens (on the "device"). */
  readonly targets: TargetPorts;
  readonly placement: Placement;
  /** A private temp directory for keys, configs and logs; removed by the runner. */
  readonly tmpDir: string;
  /** Progress/diagnostic line to stderr. */
  readonly log: (line: string) => void;
  /** Extra environment for the path's processes (the trace module sets DEVSTREAMS_TRACE). */
  readonly env?: Readonly<Record<string, string>>;
}

export interface RunningPath {
  /** Local port per target: connecting to it reaches that target through the path. */
  readonly ports: Record<TargetName, number>;
  /** Processes of the path, for CPU and RSS sampling (empty for direct loopback). */
  readonly processes: readonly ProcessRef[];
  /** Round trip the emulated links add to this path, in ms (0 on loopback). */
  readonly nominalRttMs: number;
  /** Capacity of the narrowest emulated leg in MB/s; 0 = uncapped. */
  readonly capacityMBps: number;
  /**
   * Optional: drop the underlying stream so that the next connection opens a cold one (hub
   * handshake included). Paths without a long-lived stream leave it undefined.
   */
  makeCold?(): Promise<void>;
  stop(): Promise<void>;
}

export interface BenchPath {
  /** Stable id used in --paths, JSON and tables ("direct", "openssh", "devstreams"). */
  readonly id: string;
  readonly title: string;
  /**
   * Restricts the path to these scenario and/or placement ids (a variant measured for one
   * comparison only, e.g. encryption off on loopback bulk). Absent: every selected one.
   */
  readonly only?: { readonly scenarios?: readonly string[]; readonly placements?: readonly string[] };
  /** Why this path cannot run here (missing binary, not built yet), or undefined when it can. */
  unavailableReason(): Promise<string | undefined>;
  start(ctx: PathStartContext): Promise<RunningPath>;
}
