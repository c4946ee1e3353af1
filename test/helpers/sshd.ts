/**
 * A private OpenSSH server for end-to-end tests: its own host key, one authorized client key,
 * a free port on 127.0.0.1, running as the current user (root works). Absent binaries are
 * reported, not thrown, so the caller can skip with the reason. The keys and config are the
 * bench's (bench/sshd.ts), so the tests and the OpenSSH baseline run the same sshd set-up.
 */
import os from 'node:os';
import { freePort, spawnChild, stderrOf, waitForPort } from '../../bench/procs.js';
import { prepareSshd, sshClientArgs, sshdBinary } from '../../bench/sshd.js';

export { sshUnavailableReason } from '../../bench/sshd.js';

export interface Sshd {
  port: number;
  user: string;
  /** Arguments for `ssh` that log in with the test key without prompts, to `port`. */
  sshArgs(port: number): string[];
  stop(): Promise<void>;
}

export async function startSshd(dir: string): Promise<Sshd> {
  const port = await freePort();
  const config = await prepareSshd(dir, port);
  const daemon = spawnChild(sshdBinary() as string, ['-D', '-e', '-f', config]);
  await waitForPort(port, undefined, () => daemon.proc.exitCode === null).catch(async (err: Error) => {
    await daemon.stop();
    throw new Error(`sshd did not start: ${err.message}; ${stderrOf(daemon)}`);
  });
  const user = os.userInfo().username;
  return {
    port,
    user,
    sshArgs: (p) => [...sshClientArgs(dir, p), `${user}@127.0.0.1`],
    stop: () => daemon.stop(),
  };
}
