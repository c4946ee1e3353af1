/** Test helpers for resumption: a device proxy and a service proxy over a hub, optionally through chaos proxies, and paced echo clients. */
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { generateStaticKeyPair, expectKey } from '../../src/crypto/index.js';
import { AllowList, DeviceProxy, createServiceApp, parseForward, type ResumeEvent } from '../../src/proxy/index.js';
import type { ResumeConfig } from '../../src/resume/index.js';

export function viaGateway(cs: string, port: number | undefined): string {
  return port === undefined ? cs : `${cs};GatewayHostName=127.0.0.1:${port}`;
}

export interface Tunnel {
  device: DeviceProxy;
  port: number;
  events: ResumeEvent[];
  close(): Promise<void>;
}

export async function startTunnel(o: {
  serviceString: string;
  deviceString: string;
  deviceId: string;
  targetPort: number;
  serviceGateway?: number;
  deviceGateway?: number;
  resume?: Partial<ResumeConfig>;
}): Promise<Tunnel> {
  const deviceKeys = generateStaticKeyPair();
  const serviceKeys = generateStaticKeyPair();
  const device = new DeviceProxy({
    connectionString: viaGateway(o.deviceString, o.deviceGateway),
    allow: new AllowList([`127.0.0.1:${o.targetPort}`]),
    staticKeys: deviceKeys,
    serviceKeys: [serviceKeys.publicKey],
    backoff: { initialMs: 50, maxMs: 500 },
    ...(o.resume ? { resume: o.resume } : {}),
  });
  await device.start();
  const events: ResumeEvent[] = [];
  const app = createServiceApp({
    connectionString: viaGateway(o.serviceString, o.serviceGateway),
    deviceId: o.deviceId,
    forwards: [parseForward(`0:127.0.0.1:${o.targetPort}`)],
    staticKeys: serviceKeys,
    verifyDevice: expectKey(deviceKeys.publicKey),
    resume: o.resume ?? true,
    onResume: (e) => events.push(e),
  });
  const listeners = await app.proxy.start();
  return {
    device,
    port: listeners[0]!.port,
    events,
    close: async () => {
      await app.proxy.stop();
      app.client.close();
      await device.stop();
    },
  };
}

export interface EchoResult {
  sent: string;
  received: string;
  bytes: number;
  error?: Error;
}

/** Writes `total` random bytes in `chunk`-sized pieces every `intervalMs`, half-closes, and hashes what the echo returns. */
export function pacedEcho(port: number, total: number, chunk = 32 * 1024, intervalMs = 20): Promise<EchoResult> {
  return new Promise((resolve) => {
    const sent = createHash('sha256');
    const received = createHash('sha256');
    let bytes = 0;
    let written = 0;
    let timer: NodeJS.Timeout | undefined;
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const done = (error?: Error): void => {
      clearInterval(timer);
      resolve({ sent: sent.digest('hex'), received: received.digest('hex'), bytes, ...(error ? { error } : {}) });
    };
    socket.on('data', (c: Buffer) => {
      received.update(c);
      bytes += c.length;
    });
    socket.on('end', () => {
      socket.end();
      done();
    });
    socket.on('error', (err) => done(err));
    socket.on('connect', () => {
      timer = setInterval(() => {
        const n = Math.min(chunk, total - written);
        const data = randomBytes(n);
        sent.update(data);
        written += n;
        socket.write(data);
        if (written >= total) {
          clearInterval(timer);
          socket.end();
        }
      }, intervalMs);
    });
  });
}
