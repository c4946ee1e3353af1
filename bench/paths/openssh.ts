// OpenSSH baseline: `ssh -L` (aes128-gcm) -> blind TCP relay (the "hub", a separate process that
// cannot read) -> a private sshd -> target. The sshd runs on a free port with a host key and an
// authorized key generated in the path's temp dir, as the current user (root works: PermitRootLogin,
// StrictModes no, UsePAM no). On emulated placements the relay crosses the hub-service and
// device-hub legs as two delay lines in series, as the tunnel does (paths/links.ts).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { combineLegs } from '../link-emulator.js';
import { relayedCapacityMBps, relayedRttMs } from '../placements.js';
import { freePort, spawnChild, stderrOf, waitForPort } from '../procs.js';
import { prepareSshd, sshClientArgs, sshdBinary, sshUnavailableReason } from '../sshd.js';
import { TARGET_NAMES, type TargetName } from '../targets.js';
import { startLinks, startRelayedLegs } from './links.js';
import type { BenchPath, RunningPath } from './types.js';

const run = promisify(execFile);

/** Cipher of the baseline: the AEAD OpenSSH picks on AES-NI machines, as the issue asks. */
export const OPENSSH_CIPHER = 'aes128-gcm@openssh.com';
/** `ssh -V` output, e.g. "OpenSSH_9.2p1 Debian-2+deb12u10, OpenSSL 3.0.19 27 Jan 2026". */
export async function opensshVersion(): Promise<string | undefined> {
  try {
    const { stderr } = await run('ssh', ['-V']);
    return stderr.trim();
  } catch {
    return undefined;
  }
}

export const opensshPath: BenchPath = {
  id: 'openssh',
  title: `OpenSSH -L (${OPENSSH_CIPHER}) via blind relay`,
  async unavailableReason() {
    return sshUnavailableReason();
  },
  async start(ctx): Promise<RunningPath> {
    const sshd = sshdBinary() as string;
    const dir = fs.mkdtempSync(path.join(ctx.tmpDir, 'openssh-'));
    const sshdPort = await freePort();
    const config = await prepareSshd(dir, sshdPort, [`Ciphers ${OPENSSH_CIPHER}`, 'Compression no']);
    const daemon = spawnChild(sshd, ['-D', '-e', '-f', config]);
    const stopAll: Array<() => Promise<void>> = [() => daemon.stop()];
    const stop = async (): Promise<void> => {
      for (const s of stopAll.reverse()) await s();
    };
    try {
      await waitForPort(sshdPort, undefined, () => daemon.proc.exitCode === null).catch((err: Error) => {
        throw new Error(`sshd did not start: ${err.message}; ${stderrOf(daemon)}`);
      });
      // Loopback: one blind relay (the "hub"). Emulated: the same two delay lines the tunnel crosses.
      const relay = ctx.placement.loopback
        ? await startLinks([{ targetHost: '127.0.0.1', targetPort: sshdPort, leg: combineLegs([]) }])
        : await startRelayedLegs(ctx.placement, [sshdPort]);
      stopAll.push(() => relay.child.stop());
      const localPorts: number[] = [];
      const forwards: string[] = [];
      for (const t of TARGET_NAMES) {
        const lp = await freePort();
        localPorts.push(lp);
        forwards.push('-L', `127.0.0.1:${lp}:127.0.0.1:${ctx.targets[t]}`);
      }
      const client = spawnChild('ssh', [
        '-N',
        ...sshClientArgs(dir, relay.ports[0] as number),
        '-c',
        OPENSSH_CIPHER,
        '-o',
        'ExitOnForwardFailure=yes',
        '-o',
        'Compression=no',
        ...forwards,
        `${os.userInfo().username}@127.0.0.1`,
      ]);
      stopAll.push(() => client.stop());
      for (const lp of localPorts) {
        await waitForPort(lp, undefined, () => client.proc.exitCode === null).catch((err: Error) => {
          throw new Error(`ssh -L did not start: ${err.message}; ${stderrOf(client)}`);
        });
      }
      const ports = Object.fromEntries(TARGET_NAMES.map((t, i) => [t, localPorts[i] as number])) as Record<TargetName, number>;
      return {
        ports,
        processes: [
          { pid: client.pid, role: 'ssh client' },
          { pid: relay.child.pid, role: 'relay' },
          { pid: daemon.pid, role: 'sshd', withChildren: true },
        ],
        nominalRttMs: relayedRttMs(ctx.placement),
        capacityMBps: relayedCapacityMBps(ctx.placement),
        stop,
      };
    } catch (err) {
      await stop();
      throw err;
    }
  },
};
