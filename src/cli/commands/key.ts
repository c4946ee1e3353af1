/**
 * `devstreams key`: show this machine's public keys, and manage which services a device lets in
 * (its authorized-services file, like sshd's authorized_keys).
 */
import { Command } from 'commander';
import { AuthorizedServices, encodePublicKey } from '../../crypto/index.js';
import { defaultAuthorizedServicesPath, defaultDeviceKeyPath, defaultServiceKeyPath, loadOrCreateKeyPair } from '../../proxy/index.js';
import { DevstreamsError } from '../../errors.js';
import { action } from '../fail.js';
import { parsePublicKeys } from '../common.js';

interface ShowOpts {
  device?: string;
  key?: string;
}

interface FileOpts {
  file?: string;
  name?: string;
}

function authorizedFile(o: FileOpts): AuthorizedServices {
  return new AuthorizedServices(o.file ?? defaultAuthorizedServicesPath());
}

/** `devstreams key`: shows public keys and edits a device's authorized services. */
export function keyCommand(): Command {
  const cmd = new Command('key').description(
    "show public keys; authorize or revoke services on a device (the device's authorized_services file)",
  );
  cmd
    .command('show')
    .description("print this machine's service public key (created on first use), or a device's with --device")
    .option('--device <id>', "the device's key instead ($DEVSTREAMS_HOME/devices/<id>.key)")
    .option('--key <file>', 'key file (default $DEVSTREAMS_HOME/service.key)')
    .action(
      action(async (o: ShowOpts) => {
        const path = o.key ?? (o.device !== undefined ? defaultDeviceKeyPath(o.device) : defaultServiceKeyPath());
        const { keys } = await loadOrCreateKeyPair(path);
        process.stdout.write(`${encodePublicKey(keys.publicKey)}\n`);
      }),
    );
  cmd
    .command('authorize <publicKey>')
    .description('on the device: let the service with this public key open sessions (takes effect at its next session, no restart)')
    .option('--name <name>', 'who it is (an operator, a tool); shown in logs, usable with revoke')
    .option('--file <file>', 'authorized-services file (default $DEVSTREAMS_HOME/authorized_services)')
    .action(
      action(async (publicKey: string, o: FileOpts) => {
        const [key] = parsePublicKeys([publicKey], 'public key');
        const file = authorizedFile(o);
        const changed = await file.add(key!, o.name ?? '');
        process.stderr.write(
          `${changed ? 'authorized' : 'already authorized'}: ${encodePublicKey(key!)}${o.name ? ` (${o.name})` : ''} in ${file.path}\n`,
        );
      }),
    );
  cmd
    .command('revoke <publicKeyOrName>')
    .description('on the device: remove a service by key or name (new sessions and resumes are refused; open ones run on)')
    .option('--file <file>', 'authorized-services file (default $DEVSTREAMS_HOME/authorized_services)')
    .action(
      action(async (which: string, o: FileOpts) => {
        const file = authorizedFile(o);
        const n = await file.revoke(which);
        if (n === 0) throw new DevstreamsError('ERR_CONFIG', `no service ${JSON.stringify(which)} in ${file.path}`);
        process.stderr.write(`revoked ${n} service key${n === 1 ? '' : 's'} from ${file.path}\n`);
      }),
    );
  cmd
    .command('list')
    .description('on the device: the authorized services, one "KEY NAME" line each')
    .option('--file <file>', 'authorized-services file (default $DEVSTREAMS_HOME/authorized_services)')
    .action(
      action(async (o: FileOpts) => {
        for (const e of await authorizedFile(o).list()) process.stdout.write(`${encodePublicKey(e.key)}${e.name ? ` ${e.name}` : ''}\n`);
      }),
    );
  cmd.addHelpText(
    'after',
    `
Examples:
  operator$ devstreams key show
  device$   devstreams key authorize 3q2+7w...= --name alice
  device$   devstreams key revoke alice`,
  );
  return cmd;
}
