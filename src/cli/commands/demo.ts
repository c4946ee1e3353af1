/**
 * `devstreams demo`: the whole tunnel in one process on loopback, to try it in a minute: a hub
 * with a throwaway registry, a device proxy, a service proxy, and two small device-side
 * services (a diagnostics web page and an echo service). Ctrl-C stops everything.
 */
import http from 'node:http';
import net from 'node:net';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { encodePublicKey, expectKey, generateStaticKeyPair } from '../../crypto/index.js';
import { Hub } from '../../hub/index.js';
import { AllowList, DeviceProxy, createServiceApp, parseForward } from '../../proxy/index.js';
import { createLogger, withLogOptions, type LogFormat } from '../log.js';
import { action } from '../fail.js';
import { onShutdown } from '../common.js';

const DEMO_DEVICE_ID = 'demo-device';

interface DemoOpts {
  sshPort: number;
  sshTarget: string;
  webPort: number;
  logLevel: string;
  logFormat?: LogFormat;
}

function port(value: string): number {
  const n = Number(value);
  if (!/^\d{1,5}$/.test(value) || n > 65535) throw new InvalidArgumentError('expected a port number (0 = any free port)');
  return n;
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return (server.address() as net.AddressInfo).port;
}

/** The device's own diagnostics page, reachable only from the device's network. */
function diagnosticsPage(): http.Server {
  const started = Date.now();
  return http.createServer((req, res) => {
    const body = `<!doctype html><title>demo-device diagnostics</title>
<h1>demo-device</h1>
<p>You are reading a page served on the device's loopback interface, through the hub, sealed end to end.</p>
<ul><li>uptime: ${Math.round((Date.now() - started) / 1000)} s</li><li>path: ${req.url ?? '/'}</li><li>node: ${process.version}</li></ul>\n`;
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
}

/** True when something accepts TCP connections at host:port. */
function reachable(hostPort: string): Promise<boolean> {
  const colon = hostPort.lastIndexOf(':');
  const host = hostPort.slice(0, colon).replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const socket = net.connect({ host, port: Number(hostPort.slice(colon + 1)) });
    socket.setTimeout(1000, () => socket.destroy());
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('close', () => resolve(false));
  });
}

/** True when `command` is an executable file in a PATH directory (no shell, no child process). */
function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function echoService(): net.Server {
  return net.createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {});
    socket.pipe(socket);
  });
}

/** `devstreams demo`: the whole tunnel in one process on loopback, to try it without a second machine. */
export function demoCommand(): Command {
  const cmd = new Command('demo')
    .description('run a hub, a device proxy, a service proxy and demo device services in one process, on loopback')
    .option('--ssh-port <port>', "local port forwarded to the device's ssh (0 = any free port)", port, 2222)
    .option('--ssh-target <host:port>', 'where the "device" finds its sshd', '127.0.0.1:22')
    .option('--web-port <port>', "local port for the device's diagnostics page (0 = any free port)", port, 0);
  withLogOptions(cmd, 'warn');
  cmd.addHelpText(
    'after',
    `
Example:
  $ devstreams demo
  then, in another terminal:  curl http://127.0.0.1:<web port>/   or   ssh -p 2222 $USER@127.0.0.1`,
  );
  cmd.action(
    action(async (o: DemoOpts) => {
      const log = createLogger(o);
      const dataDir = mkdtempSync(join(tmpdir(), 'devstreams-demo-'));
      const web = diagnosticsPage();
      const echo = echoService();
      const webTarget = await listen(web);
      const echoTarget = await listen(echo);
      const hub = await Hub.start({ dataDir, host: '127.0.0.1', port: 0, logger: log });
      const record = await hub.registry.addDevice(DEMO_DEVICE_ID);
      const deviceKeys = generateStaticKeyPair();
      const serviceKeys = generateStaticKeyPair();
      const device = new DeviceProxy({
        connectionString: hub.deviceConnectionString(record),
        allow: new AllowList([`127.0.0.1:${webTarget}`, `127.0.0.1:${echoTarget}`, o.sshTarget]),
        staticKeys: deviceKeys,
        // The device lets in only the service below (in a real setup: 'devstreams key authorize').
        serviceKeys: [serviceKeys.publicKey],
      });
      await device.start();
      const sshTarget = o.sshTarget.replace(/^\[|\](?=:)/g, '');
      const { proxy } = createServiceApp({
        connectionString: hub.policyConnectionString('service'),
        deviceId: DEMO_DEVICE_ID,
        forwards: [
          parseForward(`${o.webPort}:127.0.0.1:${webTarget}`),
          parseForward(`0:127.0.0.1:${echoTarget}`),
          parseForward(`${o.sshPort}:${sshTarget}`),
        ],
        staticKeys: serviceKeys,
        // Both ends live in this process, so the service can pin the device key it just made.
        verifyDevice: expectKey(deviceKeys.publicKey),
        onConnection: (e) => {
          if (e.error)
            log.warn(
              { target: e.target, code: (e.error as { code?: string }).code, error: e.error.message },
              'connection refused or reset',
            );
        },
      });
      const listeners = await proxy.start();
      const [webL, echoL, sshL] = listeners;
      process.stdout.write(
        [
          `devstreams demo: hub on 127.0.0.1:${hub.port}, device "${DEMO_DEVICE_ID}" (key ${encodePublicKey(deviceKeys.publicKey)})`,
          '',
          `  device web page   http://127.0.0.1:${webL!.port}/`,
          `  device echo       nc 127.0.0.1 ${echoL!.port}${onPath('nc') ? '' : '   (nc is not installed here: apt-get install netcat-openbsd)'}`,
          `  device ssh        ssh -p ${sshL!.port} ${process.env.USER ?? 'user'}@127.0.0.1   (reaches ${o.sshTarget} on the "device")`,
          '',
          ...((await reachable(o.sshTarget))
            ? []
            : [
                `  note: nothing listens on ${o.sshTarget} here, so ssh will be refused (ERR_TARGET_REFUSED); start sshd or pass --ssh-target`,
                '',
              ]),
          'Every connection is a channel in one end-to-end encrypted device stream through the hub.',
          'Ctrl-C stops everything.',
          '',
        ].join('\n'),
      );
      onShutdown(
        log,
        async () => {
          await proxy.stop();
          await device.stop();
          await hub.close();
          web.close();
          echo.close();
          rmSync(dataDir, { recursive: true, force: true });
        },
        () => proxy.connectionCount,
      );
    }),
  );
  return cmd;
}
