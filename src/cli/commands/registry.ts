/** `devstreams registry ...`: manage devices and print connection strings, straight on the data directory. */
import { Command } from 'commander';
import { DevstreamsError } from '../../errors.js';
import { formatConnectionString, type HubTransport } from '../../auth/connection-string.js';
import { DeviceRegistry, type HubEndpoint } from '../../hub/registry.js';
import { action } from '../fail.js';

interface CommonOpts {
  data: string;
  host?: string;
  plain?: boolean;
  gateway?: string;
}

function endpointOf(reg: DeviceRegistry, o: CommonOpts): HubEndpoint {
  if (o.host !== undefined) {
    const transport: HubTransport = o.plain ? 'ws' : 'wss';
    return o.gateway !== undefined ? { hostName: o.host, transport, gatewayHostName: o.gateway } : { hostName: o.host, transport };
  }
  const ep = reg.endpoint;
  if (!ep) throw new DevstreamsError('ERR_CONFIG', `no hub address recorded in ${o.data}: start the hub once with this --data, or pass --host HOST:PORT [--plain]`);
  return o.gateway !== undefined ? { ...ep, gatewayHostName: o.gateway } : ep;
}

function deviceString(reg: DeviceRegistry, o: CommonOpts, deviceId: string, key: string): string {
  const ep = endpointOf(reg, o);
  return formatConnectionString({ kind: 'device', deviceId, sharedAccessKey: key, ...ep });
}

function policyString(reg: DeviceRegistry, o: CommonOpts, policy: 'service' | 'owner'): string {
  const ep = endpointOf(reg, o);
  return formatConnectionString({ kind: 'policy', policy, sharedAccessKey: reg.policyKey(policy)!, ...ep });
}

function withCommon(c: Command): Command {
  return c
    .requiredOption('--data <dir>', 'hub data directory (holds registry.json)')
    .option('--host <host:port>', 'hub address for printed strings (default: the one the hub recorded)')
    .option('--plain', 'with --host: the hub serves plain ws (adds Transport=ws)')
    .option('--gateway <host:port>', 'add GatewayHostName: connect here, tokens stay scoped to HostName');
}

export function registryCommand(): Command {
  const cmd = new Command('registry').description('manage devices and print connection strings');
  cmd.addHelpText('after', `
Examples:
  $ devstreams registry add sensor-17 --data ./hubdata > sensor-17.cs
  $ devstreams registry service-string --data ./hubdata
  $ devstreams registry rotate-key sensor-17 --data ./hubdata
Changes take effect in a running hub at once.`);

  withCommon(cmd.command('add <deviceId>').description('register a device; prints only its connection string'))
    .action(action((deviceId: string, o: CommonOpts) => {
      const reg = DeviceRegistry.open(o.data);
      endpointOf(reg, o); // fail before writing when no address is known
      const rec = reg.addDevice(deviceId);
      process.stdout.write(deviceString(reg, o, rec.deviceId, rec.key) + '\n');
    }));

  withCommon(cmd.command('remove <deviceId>').description('unregister a device; its sockets are closed at once'))
    .action(action((deviceId: string, o: CommonOpts) => {
      DeviceRegistry.open(o.data).removeDevice(deviceId);
    }));

  withCommon(cmd.command('rotate-key <deviceId>').description('give a device a new key; prints its new connection string'))
    .action(action((deviceId: string, o: CommonOpts) => {
      const reg = DeviceRegistry.open(o.data);
      const rec = reg.rotateDeviceKey(deviceId);
      process.stdout.write(deviceString(reg, o, rec.deviceId, rec.key) + '\n');
    }));

  withCommon(cmd.command('device-string <deviceId>').description('print a registered device\'s connection string'))
    .action(action((deviceId: string, o: CommonOpts) => {
      const reg = DeviceRegistry.open(o.data);
      const rec = reg.getDevice(deviceId);
      if (!rec) throw new DevstreamsError('ERR_DEVICE_NOT_FOUND', `device ${deviceId} is not registered`);
      process.stdout.write(deviceString(reg, o, rec.deviceId, rec.key) + '\n');
    }));

  withCommon(cmd.command('list').description('list registered devices, one id per line'))
    .option('--json', 'print JSON (id, createdAt, keyUpdatedAt)')
    .action(action((o: CommonOpts & { json?: boolean }) => {
      const devices = DeviceRegistry.open(o.data).listDevices();
      if (o.json) process.stdout.write(JSON.stringify(devices.map(({ deviceId, createdAt, keyUpdatedAt }) => ({ deviceId, createdAt, keyUpdatedAt }))) + '\n');
      else for (const d of devices) process.stdout.write(`${d.deviceId}\n`);
    }));

  withCommon(cmd.command('service-string').description('print only the service connection string'))
    .action(action((o: CommonOpts) => {
      const reg = DeviceRegistry.open(o.data);
      process.stdout.write(policyString(reg, o, 'service') + '\n');
    }));

  withCommon(cmd.command('owner-string').description('print only the owner (registry admin) connection string'))
    .action(action((o: CommonOpts) => {
      const reg = DeviceRegistry.open(o.data);
      process.stdout.write(policyString(reg, o, 'owner') + '\n');
    }));

  return cmd;
}
