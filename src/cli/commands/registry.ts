/** `devstreams registry ...`: manage devices and print connection strings, straight on the data directory or the fleet's Redis. */
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, InvalidArgumentError } from 'commander';
import { DevstreamsError } from '../../errors.js';
import { REGISTRY_FILE } from '../../hub/registry.js';
import { connectionStringFrom, connectionStringOptions, hubTrust, parsePositiveMs, type ConnectionStringFlags } from '../common.js';
import { ServiceClient, type DeviceInfo } from '../../sdk/index.js';
import { formatConnectionString, type HubTransport } from '../../auth/connection-string.js';
import { DeviceRegistry, type HubEndpoint } from '../../hub/registry.js';
import type { RegistryStore } from '../../hub/registry-store.js';
import { RedisRegistry } from '../../hub/fleet/redis-registry.js';
import { closeRedis, connectRedis, DEFAULT_REDIS_KEY_PREFIX } from '../../hub/fleet/redis.js';
import { certificateSha256, isSelfSigned, notSelfSignedError } from '../../transport/index.js';
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
  wait?: number;
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
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(path));
  } catch (err) {
    throw new DevstreamsError(
      'ERR_CONFIG',
      `cannot read the hub certificate ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  // A pinned certificate becomes the clients' only CA, which only a self-signed one can be: a
  // string pinning a CA-issued one would never connect.
  if (!isSelfSigned(cert)) throw notSelfSignedError(`--hub-cert ${path}`, cert);
  return certificateSha256(cert.raw);
}

/**
 * Prints a connection string on stdout, or with --out writes it to a file of mode 0600: a shell
 * redirect (`> device.cs`) creates the file with the umask's mode, usually readable by everyone.
 */
function emitString(o: CommonOpts, text: string): void {
  if (o.out !== undefined) writeSecretFile(o.out, `${text}\n`);
  else process.stdout.write(`${text}\n`);
}

/** Adds --out to a command that prints a secret. */
function withOut(c: Command): Command {
  return c.option('--out <file>', 'write the string to FILE with mode 600 instead of printing it');
}

/**
 * How long a command that prints a connection string waits for a starting hub to record its
 * address in the data directory (`--wait`), ms. The quickstart starts the hub in the background
 * and registers a device on the next line: the hub needs this moment to come up.
 */
export const DEFAULT_HUB_ADDRESS_WAIT_MS = 10_000;
/** How often the wait looks at the registry file, ms. */
const HUB_ADDRESS_POLL_MS = 100;
/** After this long waiting, say so on stderr, ms. */
const HUB_ADDRESS_NOTICE_MS = 1000;

function recordedEndpoint(dataDir: string): boolean {
  const path = join(dataDir, REGISTRY_FILE);
  if (!existsSync(path)) return false;
  try {
    return (JSON.parse(readFileSync(path, 'utf8')) as { endpoint?: unknown }).endpoint !== undefined;
  } catch {
    return false; // being replaced right now; look again
  }
}

/**
 * Waits until the hub has recorded its address in `--data` (or the wait ends). Done before
 * opening the registry, so that a registry command never creates the file a starting hub is
 * about to create.
 */
async function waitForHubAddress(o: CommonOpts): Promise<void> {
  if (o.data === undefined || o.host !== undefined) return;
  const waitMs = o.wait ?? DEFAULT_HUB_ADDRESS_WAIT_MS;
  const started = Date.now();
  let told = false;
  while (!recordedEndpoint(o.data) && Date.now() - started < waitMs) {
    if (!told && Date.now() - started >= HUB_ADDRESS_NOTICE_MS) {
      process.stderr.write(`devstreams: waiting up to ${Math.round(waitMs / 1000)} s for a hub to start with --data ${o.data}\n`);
      told = true;
    }
    await sleep(HUB_ADDRESS_POLL_MS);
  }
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
  if (!ep)
    throw new DevstreamsError(
      'ERR_CONFIG',
      `no hub address recorded in ${o.data ?? 'Redis'}${o.data !== undefined ? ` after waiting ${Math.round((o.wait ?? DEFAULT_HUB_ADDRESS_WAIT_MS) / 1000)} s` : ''}: start the hub once with this ${o.data !== undefined ? '--data' : '--redis'}, or pass --host HOST:PORT [--plain]`,
    );
  return o.gateway !== undefined ? { ...ep, gatewayHostName: o.gateway } : ep;
}

function deviceString(reg: RegistryStore, o: CommonOpts, deviceId: string, key: string): string {
  const ep = endpointOf(reg, o);
  return formatConnectionString({ kind: 'device', deviceId, sharedAccessKey: key, ...ep });
}

function policyString(reg: RegistryStore, o: CommonOpts, policy: string): string {
  const ep = endpointOf(reg, o);
  const key = reg.policyKey(policy);
  if (key === undefined)
    throw new DevstreamsError('ERR_NOT_FOUND', `service ${policy} does not exist (devstreams registry add-service ${policy})`);
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
async function withRegistry(o: CommonOpts, fn: (reg: RegistryStore) => Promise<void> | void, needsHubAddress = true): Promise<void> {
  if ((o.data === undefined) === (o.redis === undefined))
    throw new DevstreamsError('ERR_CONFIG', 'give exactly one of --data DIR or --redis URL');
  if (needsHubAddress) await waitForHubAddress(o);
  if (o.data !== undefined) {
    await fn(DeviceRegistry.open(o.data));
    return;
  }
  let ca: Buffer | undefined;
  if (o.redisCa !== undefined) {
    try {
      ca = readFileSync(o.redisCa);
    } catch (err) {
      throw new DevstreamsError(
        'ERR_CONFIG',
        `cannot read --redis-ca ${o.redisCa}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  }
  const redis = await connectRedis(o.redis!, { reconnect: false, ca });
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
    .option(
      '--hub-cert <file>',
      'pin this hub certificate (PEM) in printed strings (HubCertSha256; default: DATA/tls/hub-cert.pem when the hub runs with --tls-self-signed)',
    )
    .option(
      '--wait <seconds>',
      `with --data: how long to wait for a starting hub to record its address (default ${DEFAULT_HUB_ADDRESS_WAIT_MS / 1000})`,
      parsePositiveMs,
    );
}

interface ListOpts extends ConnectionStringFlags {
  data?: string;
  redis?: string;
  ca?: string;
  json?: boolean;
}

/** How long `registry list` waits for the hub's answer before showing the registry alone, ms. */
const LIST_HUB_TIMEOUT_MS = 5_000;

/** The devices and their state from the hub's API; rejects when the hub cannot be asked. */
async function fromHub(cs: string, ca: { ca?: Buffer }): Promise<DeviceInfo[]> {
  const client = ServiceClient.fromConnectionString(cs, ca);
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      client.listDevices(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new DevstreamsError('ERR_HUB_UNAVAILABLE', `hub did not answer within ${LIST_HUB_TIMEOUT_MS / 1000} s`)),
          LIST_HUB_TIMEOUT_MS,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    client.close();
  }
}

function printDevices(devices: DeviceInfo[], json: boolean | undefined, stateKnown: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(devices.map(({ connectionString: _secret, ...d }) => d))}\n`);
    return;
  }
  const rows = [
    ['DEVICE', 'STATE', 'NODE', 'LAST SEEN'],
    ...devices.map((d) => [d.deviceId, stateKnown ? (d.connected ? 'online' : 'offline') : 'unknown', d.node ?? '-', d.lastSeen ?? '-']),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) process.stdout.write(`${r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')}\n`);
}

/**
 * `registry list`: with a connection string, the hub's answer alone; with --data/--redis, the
 * registry's devices and, when its hub answers, their state (else "unknown", with the reason).
 */
async function listDevices(o: ListOpts): Promise<void> {
  if (o.data === undefined && o.redis === undefined) {
    const cs = connectionStringFrom(o);
    printDevices(await fromHub(cs, await hubTrust(cs, o.ca)), o.json, true);
    return;
  }
  await withRegistry(
    o,
    async (reg) => {
      const records = reg
        .listDevices()
        .map((d) => ({ deviceId: d.deviceId, createdAt: d.createdAt, keyUpdatedAt: d.keyUpdatedAt, connected: false }));
      if (!reg.endpoint) {
        process.stderr.write('devstreams: no hub has run with this registry yet; state unknown\n');
        printDevices(records, o.json, false);
        return;
      }
      try {
        const cs = policyString(reg, o, 'service');
        printDevices(await fromHub(cs, await hubTrust(cs, o.ca)), o.json, true);
      } catch (err) {
        process.stderr.write(`devstreams: cannot ask the hub for device state: ${(err as Error).message}\n`);
        printDevices(records, o.json, false);
      }
    },
    false,
  );
}

/**
 * `devstreams registry`: devices, service identities and connection strings, written straight into the
 * registry (`--data` directory or `--redis`).
 */
export function registryCommand(): Command {
  const cmd = new Command('registry').description('manage devices and print connection strings');
  cmd.addHelpText(
    'after',
    `
Examples:
  $ devstreams registry add sensor-17 --data ./hubdata --out sensor-17.cs
  $ devstreams registry service-string --data ./hubdata --out service.cs
  $ devstreams registry rotate-key sensor-17 --data ./hubdata
  $ devstreams registry add sensor-18 --redis redis://10.0.0.5:6379
  $ devstreams registry list --connection-string-file service.cs   # from an operator's laptop
Changes take effect in a running hub at once.`,
  );

  withOut(withCommon(cmd.command('add <deviceId>').description('register a device; prints only its connection string'))).action(
    action((deviceId: string, o: CommonOpts) =>
      withRegistry(o, async (reg) => {
        endpointOf(reg, o); // fail before writing when no address is known
        const rec = await reg.addDevice(deviceId);
        emitString(o, deviceString(reg, o, rec.deviceId, rec.key));
      }),
    ),
  );

  withCommon(cmd.command('remove <deviceId>').description('unregister a device; its sockets are closed at once')).action(
    action((deviceId: string, o: CommonOpts) =>
      withRegistry(
        o,
        async (reg) => {
          await reg.removeDevice(deviceId);
        },
        false,
      ),
    ),
  );

  withOut(withCommon(cmd.command('rotate-key <deviceId>').description('give a device a new key; prints its new connection string'))).action(
    action((deviceId: string, o: CommonOpts) =>
      withRegistry(o, async (reg) => {
        const rec = await reg.rotateDeviceKey(deviceId);
        emitString(o, deviceString(reg, o, rec.deviceId, rec.key));
      }),
    ),
  );

  withOut(withCommon(cmd.command('device-string <deviceId>').description("print a registered device's connection string"))).action(
    action((deviceId: string, o: CommonOpts) =>
      withRegistry(o, (reg) => {
        const rec = reg.getDevice(deviceId);
        if (!rec) throw new DevstreamsError('ERR_DEVICE_NOT_FOUND', `device ${deviceId} is not registered`);
        emitString(o, deviceString(reg, o, rec.deviceId, rec.key));
      }),
    ),
  );

  connectionStringOptions(
    cmd
      .command('list')
      .description(
        'list devices with their state (online, hub node, last seen), from the hub machine or any machine with a connection string',
      ),
    'service (or owner)',
  )
    .option('--data <dir>', 'hub data directory: list its devices and ask its hub for their state')
    .option('--redis <url>', "a fleet's Redis instead of --data")
    .option('--ca <file>', 'extra CA certificate (PEM) for a hub with a self-signed certificate')
    .option('--json', 'print JSON: [{deviceId, createdAt, keyUpdatedAt, connected, node, lastSeen}]')
    .action(action((o: ListOpts) => listDevices(o)));

  withOut(
    withCommon(
      cmd
        .command('service-string')
        .description("print only the service connection string (the shared one, or a service identity's with --name)"),
    ),
  )
    .option('--name <service>', 'the string of this service identity (see add-service)')
    .action(
      action((o: CommonOpts & { name?: string }) =>
        withRegistry(o, (reg) => {
          emitString(o, policyString(reg, o, o.name ?? 'service'));
        }),
      ),
    );

  withOut(
    withCommon(
      cmd
        .command('add-service <name>')
        .description('add a service identity (one per operator or tool) with limits of its own; prints its connection string'),
    ),
  )
    .option('--max-pending <n>', "stream requests it may have waiting for devices at once (default: the hub's 1024)", positiveInt)
    .option('--rate <perSecond>', 'stream requests per second it may make (default: only the hub-wide rate)', positiveInt)
    .action(
      action((name: string, o: CommonOpts & { maxPending?: number; rate?: number }) =>
        withRegistry(o, async (reg) => {
          endpointOf(reg, o); // fail before writing when no address is known
          const rec = await reg.addService(name, {
            maxPending: o.maxPending,
            ratePerSecond: o.rate,
          });
          emitString(o, policyString(reg, o, rec.name));
        }),
      ),
    );

  withCommon(
    cmd
      .command('remove-service <name>')
      .description('revoke a service identity: its tokens stop working at once; other services are unaffected'),
  ).action(
    action((name: string, o: CommonOpts) =>
      withRegistry(o, async (reg) => {
        await reg.removeService(name);
      }),
    ),
  );

  withOut(
    withCommon(cmd.command('rotate-service-key <name>').description('give a service identity a new key; prints its new connection string')),
  ).action(
    action((name: string, o: CommonOpts) =>
      withRegistry(o, async (reg) => {
        await reg.rotateServiceKey(name);
        emitString(o, policyString(reg, o, name));
      }),
    ),
  );

  withCommon(cmd.command('list-services').description('list service identities, one "NAME [maxPending=N] [rate=N/s]" line each')).action(
    action((o: CommonOpts) =>
      withRegistry(o, (reg) => {
        for (const s of reg.listServices()) {
          process.stdout.write(
            `${s.name}${s.maxPending !== undefined ? ` maxPending=${s.maxPending}` : ''}${s.ratePerSecond !== undefined ? ` rate=${s.ratePerSecond}/s` : ''}\n`,
          );
        }
      }),
    ),
  );

  withOut(withCommon(cmd.command('owner-string').description('print only the owner (registry admin) connection string'))).action(
    action((o: CommonOpts) =>
      withRegistry(o, (reg) => {
        emitString(o, policyString(reg, o, 'owner'));
      }),
    ),
  );

  return cmd;
}
