/** `devstreams registry ...`: manage devices and print connection strings, straight on the data directory or the fleet's Redis. */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { DevstreamsError } from '../../errors.js';
import { formatConnectionString, type HubTransport } from '../../auth/connection-string.js';
import { DeviceRegistry, type HubEndpoint } from '../../hub/registry.js';
import type { RegistryStore } from '../../hub/registry-store.js';
import { RedisRegistry } from '../../hub/fleet/redis-registry.js';
import { closeRedis, connectRedis, DEFAULT_REDIS_KEY_PREFIX } from '../../hub/fleet/redis.js';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pemCertificateSha256 } from '../../transport/index.js';
import { action } from '../fail.js';
import { writeSecretFile } from '../secret-file.js';

interface CommonOpts {
  data?: string;
  redis?: string;
  redisCa?: string;
  host?: string;
  plain?: boolean;
  gateway?: string;
  out?: string;
  hubCert?: string;
}

/**
 * The hub certificate a printed string pins (HubCertSha256): --hub-cert FILE, else the
 * self-signed one a hub with --tls-self-signed keeps in DATA/tls. None for a plain hub.
 */
function certPin(o: CommonOpts, transport: HubTransport): string | undefined {
  const path = o.hubCert ?? (o.data !== undefined ? join(o.data, 'tls', 'hub-cert.pem') : undefined);
  if (path === undefined || transport !== 'wss') return undefined;
  if (o.hubCert === undefined && !existsSync(path)) return undefined;
  try {
    return pemCertificateSha256(readFileSync(path));
  } catch (err) {
    throw new DevstreamsError('ERR_CONFIG', `cannot read the hub certificate ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/**
 * Prints a connection string on stdout, or with --out writes it to a file of mode 0600: a shell
 * redirect (`> device.cs`) creates the file with the umask's mode, usually readable by everyone.
 */
function emitString(o: CommonOpts, text: string): void {
  if (o.out !== undefined) writeSecretFile(o.out, text + '\n');
  else process.stdout.write(text + '\n');
}

/** Adds --out to a command that prints a secret. */
function withOut(c: Command): Command {
  return c.option('--out <file>', 'write the string to FILE with mode 600 instead of printing it');
}

function endpointOf(reg: RegistryStore, o: CommonOpts): HubEndpoint & { hubCertSha256?: string } {
  const ep = endpointWithoutPin(reg, o);
  const pin = certPin(o, ep.transport);
  return pin !== undefined ? { ...ep, hubCertSha256: pin } : ep;
}

function endpointWithoutPin(reg: RegistryStore, o: CommonOpts): HubEndpoint {
  if (o.host !== undefined) {
    const transport: HubTransport = o.plain ? 'ws' : 'wss';
    return o.gateway !== undefined ? { hostName: o.host, transport, gatewayHostName: o.gateway } : { hostName: o.host, transport };
  }
  const ep = reg.endpoint;
  if (!ep) throw new DevstreamsError('ERR_CONFIG', `no hub address recorded in ${o.data ?? 'Redis'}: start the hub once with this ${o.data !== undefined ? '--data' : '--redis'}, or pass --host HOST:PORT [--plain]`);
  return o.gateway !== undefined ? { ...ep, gatewayHostName: o.gateway } : ep;
}

function deviceString(reg: RegistryStore, o: CommonOpts, deviceId: string, key: string): string {
  const ep = endpointOf(reg, o);
  return formatConnectionString({ kind: 'device', deviceId, sharedAccessKey: key, ...ep });
}

function policyString(reg: RegistryStore, o: CommonOpts, policy: string): string {
  const ep = endpointOf(reg, o);
  const key = reg.policyKey(policy);
  if (key === undefined) throw new DevstreamsError('ERR_NOT_FOUND', `service ${policy} does not exist (devstreams registry add-service ${policy})`);
  return formatConnectionString({ kind: 'policy', policy, sharedAccessKey: key, ...ep });
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/**
 * Opens the registry the flags name, runs `fn` on it, and closes it. With --redis a missing
 * Redis fails within the connect timeout (2 s) with one line, ERR_HUB_UNAVAILABLE.
 */
async function withRegistry(o: CommonOpts, fn: (reg: RegistryStore) => Promise<void> | void): Promise<void> {
  if ((o.data === undefined) === (o.redis === undefined)) throw new DevstreamsError('ERR_CONFIG', 'give exactly one of --data DIR or --redis URL');
  if (o.data !== undefined) {
    await fn(DeviceRegistry.open(o.data));
    return;
  }
  let ca: Buffer | undefined;
  if (o.redisCa !== undefined) {
    try {
      ca = readFileSync(o.redisCa);
    } catch (err) {
      throw new DevstreamsError('ERR_CONFIG', `cannot read --redis-ca ${o.redisCa}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const redis = await connectRedis(o.redis!, { reconnect: false, ...(ca ? { ca } : {}) });
  try {
    await fn(await RedisRegistry.open({ redis, keyPrefix: DEFAULT_REDIS_KEY_PREFIX }));
  } finally {
    await closeRedis(redis);
  }
}

function withCommon(c: Command): Command {
  return c
    .option('--data <dir>', 'hub data directory (holds registry.json)')
    .option('--redis <url>', "a fleet's Redis (redis://[:password@]host:port[/db], rediss:// for TLS) instead of --data")
    .option('--redis-ca <file>', 'CA certificate (PEM) of a rediss:// Redis with a private CA')
    .option('--host <host:port>', 'hub address for printed strings (default: the one the hub recorded)')
    .option('--plain', 'with --host: the hub serves plain ws (adds Transport=ws)')
    .option('--gateway <host:port>', 'add GatewayHostName: connect here, tokens stay scoped to HostName')
    .option('--hub-cert <file>', "pin this hub certificate (PEM) in printed strings (HubCertSha256; default: DATA/tls/hub-cert.pem when the hub runs with --tls-self-signed)");
}

export function registryCommand(): Command {
  const cmd = new Command('registry').description('manage devices and print connection strings');
  cmd.addHelpText('after', `
Examples:
  $ devstreams registry add sensor-17 --data ./hubdata --out sensor-17.cs
  $ devstreams registry service-string --data ./hubdata --out service.cs
  $ devstreams registry rotate-key sensor-17 --data ./hubdata
  $ devstreams registry add sensor-18 --redis redis://10.0.0.5:6379
Changes take effect in a running hub at once.`);

  withOut(withCommon(cmd.command('add <deviceId>').description('register a device; prints only its connection string')))
    .action(action((deviceId: string, o: CommonOpts) => withRegistry(o, async (reg) => {
      endpointOf(reg, o); // fail before writing when no address is known
      const rec = await reg.addDevice(deviceId);
      emitString(o, deviceString(reg, o, rec.deviceId, rec.key));
    })));

  withCommon(cmd.command('remove <deviceId>').description('unregister a device; its sockets are closed at once'))
    .action(action((deviceId: string, o: CommonOpts) => withRegistry(o, async (reg) => {
      await reg.removeDevice(deviceId);
    })));

  withOut(withCommon(cmd.command('rotate-key <deviceId>').description('give a device a new key; prints its new connection string')))
    .action(action((deviceId: string, o: CommonOpts) => withRegistry(o, async (reg) => {
      const rec = await reg.rotateDeviceKey(deviceId);
      emitString(o, deviceString(reg, o, rec.deviceId, rec.key));
    })));

  withOut(withCommon(cmd.command('device-string <deviceId>').description('print a registered device\'s connection string')))
    .action(action((deviceId: string, o: CommonOpts) => withRegistry(o, (reg) => {
      const rec = reg.getDevice(deviceId);
      if (!rec) throw new DevstreamsError('ERR_DEVICE_NOT_FOUND', `device ${deviceId} is not registered`);
      emitString(o, deviceString(reg, o, rec.deviceId, rec.key));
    })));

  withCommon(cmd.command('list').description('list registered devices, one id per line'))
    .option('--json', 'print JSON (id, createdAt, keyUpdatedAt)')
    .action(action((o: CommonOpts & { json?: boolean }) => withRegistry(o, (reg) => {
      const devices = reg.listDevices();
      if (o.json) process.stdout.write(JSON.stringify(devices.map(({ deviceId, createdAt, keyUpdatedAt }) => ({ deviceId, createdAt, keyUpdatedAt }))) + '\n');
      else for (const d of devices) process.stdout.write(`${d.deviceId}\n`);
    })));

  withOut(withCommon(cmd.command('service-string').description('print only the service connection string (the shared one, or a service identity\'s with --name)')))
    .option('--name <service>', 'the string of this service identity (see add-service)')
    .action(action((o: CommonOpts & { name?: string }) => withRegistry(o, (reg) => {
      emitString(o, policyString(reg, o, o.name ?? 'service'));
    })));

  withOut(withCommon(cmd.command('add-service <name>').description('add a service identity (one per operator or tool) with limits of its own; prints its connection string')))
    .option('--max-pending <n>', 'stream requests it may have waiting for devices at once (default: the hub\'s 1024)', positiveInt)
    .option('--rate <perSecond>', 'stream requests per second it may make (default: only the hub-wide rate)', positiveInt)
    .action(action((name: string, o: CommonOpts & { maxPending?: number; rate?: number }) => withRegistry(o, async (reg) => {
      endpointOf(reg, o); // fail before writing when no address is known
      const rec = await reg.addService(name, { ...(o.maxPending !== undefined ? { maxPending: o.maxPending } : {}), ...(o.rate !== undefined ? { ratePerSecond: o.rate } : {}) });
      emitString(o, policyString(reg, o, rec.name));
    })));

  withCommon(cmd.command('remove-service <name>').description('revoke a service identity: its tokens stop working at once; other services are unaffected'))
    .action(action((name: string, o: CommonOpts) => withRegistry(o, async (reg) => {
      await reg.removeService(name);
    })));

  withOut(withCommon(cmd.command('rotate-service-key <name>').description('give a service identity a new key; prints its new connection string')))
    .action(action((name: string, o: CommonOpts) => withRegistry(o, async (reg) => {
      await reg.rotateServiceKey(name);
      emitString(o, policyString(reg, o, name));
    })));

  withCommon(cmd.command('list-services').description('list service identities, one "NAME [maxPending=N] [rate=N/s]" line each'))
    .action(action((o: CommonOpts) => withRegistry(o, (reg) => {
      for (const s of reg.listServices()) {
        process.stdout.write(`${s.name}${s.maxPending !== undefined ? ` maxPending=${s.maxPending}` : ''}${s.ratePerSecond !== undefined ? ` rate=${s.ratePerSecond}/s` : ''}\n`);
      }
    })));

  withOut(withCommon(cmd.command('owner-string').description('print only the owner (registry admin) connection string')))
    .action(action((o: CommonOpts) => withRegistry(o, (reg) => {
      emitString(o, policyString(reg, o, 'owner'));
    })));

  return cmd;
}
