// Starts one link-emulator child process hosting several relays; shared by the paths.
import type { LinkEmulatorOptions } from '../link-emulator.js';
import { benchScript, spawnNodeReady, type Child } from '../procs.js';

export interface RunningLinks {
  readonly child: Child;
  readonly ports: number[];
}

export async function startLinks(specs: readonly LinkEmulatorOptions[]): Promise<RunningLinks> {
  const { child, ready } = await spawnNodeReady<{ ports: number[] }>(benchScript('procs/links-main.js'), [Buffer.from(JSON.stringify(specs)).toString('base64url')]);
  return { child, ports: ready.ports };
}
