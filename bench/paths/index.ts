// Registry of bench paths, in report order. Add a path here and every scenario runs through it.
import { devstreamsPath, devstreamsPlainPath, devstreamsQueueTargetPath, devstreamsWorkersPath } from './devstreams.js';
import { directPath } from './direct.js';
import { emulatorPath } from './emulator.js';
import { nodeRelaysPath } from './node-relays.js';
import { opensshPath } from './openssh.js';
import type { BenchPath } from './types.js';

export const PATHS: BenchPath[] = [
  directPath,
  emulatorPath,
  devstreamsPath,
  opensshPath,
  devstreamsPlainPath,
  devstreamsWorkersPath,
  devstreamsQueueTargetPath,
  nodeRelaysPath,
];

/** Registers (or replaces, by id) a path; other bench modules may call this. */
export function registerPath(p: BenchPath): void {
  const i = PATHS.findIndex((x) => x.id === p.id);
  if (i >= 0) PATHS[i] = p;
  else PATHS.push(p);
}

export type { BenchPath, RunningPath, PathStartContext } from './types.js';
