// A private OpenSSH server's set-up, shared by the bench's openssh path and the end-to-end tests
// (test/helpers/sshd.ts): its own host key, one authorized client key and a config for 127.0.0.1
// that runs as the current user (root works: PermitRootLogin, StrictModes no, UsePAM no). It lives
// under bench/ because tests may import bench code but the bench must not import test code.
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Where sshd is looked for, in order. */
export const SSHD_CANDIDATES = ['/usr/sbin/sshd', '/usr/local/sbin/sshd', '/sbin/sshd'];

export function sshdBinary(): string | undefined {
  return SSHD_CANDIDATES.find((p) => fs.existsSync(p));
}

/** Why a private sshd cannot run here (a missing program), or undefined when it can. Synchronous so a test file can skip at load. */
export function sshUnavailableReason(): string | undefined {
  if (sshdBinary() === undefined) return 'sshd not installed (apt-get install -y openssh-server)';
  for (const cmd of ['ssh', 'ssh-keygen']) {
    if (spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status !== 0)
      return `${cmd} not installed (apt-get install -y openssh-client)`;
  }
  return undefined;
}

/**
 * Writes host and client keys, authorized_keys and sshd_config into dir for an sshd on
 * 127.0.0.1:port (extra config lines appended), and makes the privilege-separation directory sshd
 * refuses to start without. Returns the config file's path.
 */
export async function prepareSshd(dir: string, port: number, extraConfig: readonly string[] = []): Promise<string> {
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'host_key')]);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(dir, 'client_key')]);
  fs.copyFileSync(path.join(dir, 'client_key.pub'), path.join(dir, 'authorized_keys'));
  if (process.getuid?.() === 0) fs.mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const config = [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${path.join(dir, 'host_key')}`,
    `AuthorizedKeysFile ${path.join(dir, 'authorized_keys')}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    'UsePAM no',
    'StrictModes no',
    'PermitRootLogin yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'AllowTcpForwarding yes',
    `AllowUsers ${os.userInfo().username}`,
    'UseDNS no',
    'LogLevel ERROR',
    ...extraConfig,
    '',
  ].join('\n');
  const file = path.join(dir, 'sshd_config');
  fs.writeFileSync(file, config);
  return file;
}

/** `ssh` options that log in to 127.0.0.1:port with dir's client key, without prompts or a user config. */
export function sshClientArgs(dir: string, port: number): string[] {
  return [
    '-F',
    '/dev/null',
    '-i',
    path.join(dir, 'client_key'),
    '-p',
    String(port),
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    `UserKnownHostsFile=${path.join(dir, 'known_hosts')}`,
    '-o',
    'BatchMode=yes',
    '-o',
    'LogLevel=ERROR',
  ];
}
