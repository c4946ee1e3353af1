/** Test helpers: a hub on 127.0.0.1 with a temporary data directory, and a registered device. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceRegistry, Hub, type HubStartOptions } from '../../src/hub/index.js';
import { DeviceClient, ServiceClient } from '../../src/sdk/index.js';
import type { Transport } from '../../src/transport/transport.js';

export function tempDir(prefix = 'devstreams-hub-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface TestHub {
  hub: Hub;
  dir: string;
  serviceString: string;
  ownerString: string;
  addDevice(id: string): string;
  close(): Promise<void>;
}

export async function startTestHub(o: Partial<HubStartOptions> = {}): Promise<TestHub> {
  const dir = o.dataDir ?? tempDir();
  const hub = await Hub.start({ dataDir: dir, host: '127.0.0.1', port: 0, ...o });
  return {
    hub,
    dir,
    serviceString: hub.policyConnectionString('service'),
    ownerString: hub.policyConnectionString('owner'),
    addDevice(id: string) {
      // One node with a data directory: the file registry writes synchronously.
      if (!(hub.registry instanceof DeviceRegistry)) throw new Error('startTestHub: addDevice needs a file registry');
      return hub.deviceConnectionString(hub.registry.addDevice(id));
    },
    async close() {
      await hub.close();
      if (!o.dataDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A device client that accepts every stream and echoes each message back. */
export async function echoDevice(cs: string): Promise<DeviceClient> {
  const d = DeviceClient.fromConnectionString(cs, { backoff: { initialMs: 50, maxMs: 500 } });
  d.on('streamRequest', (req) => {
    void req.accept().then(
      (t) => {
        t.attach({ onMessage: (m) => t.send([m]), onDrain() {}, onClose() {} });
      },
      () => {},
    );
  });
  await d.open();
  return d;
}

/** Resolves with the next message on a transport. */
export function nextMessage(t: Transport, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message')), timeoutMs);
    t.attach({
      onMessage(m) {
        clearTimeout(timer);
        resolve(m);
      },
      onDrain() {},
      onClose(err) {
        clearTimeout(timer);
        reject(err ?? new Error('closed'));
      },
    });
  });
}

export { until } from './until.js';

export { ServiceClient, DeviceClient };
