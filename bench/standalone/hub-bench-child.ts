/**
 * Child process for the hub benchmark, so that the relay under test has its own event loop and
 * its RSS can be measured alone. Modes:
 *   hub <dataDir>   a Hub on 127.0.0.1:0 (no stream rate limit)
 *   bare            a bare `ws` relay: pairs two sockets on /pair/<id>, forwards each message
 *   fleet <redisUrl> <keyPrefix> <publicHost>   a fleet node on 127.0.0.1:0 (no stream rate limit)
 * Prints one JSON line `{"port":N}` when listening; answers each stdin line "rss" with
 * `{"rss":bytes}` after a full GC (run with --expose-gc).
 */
import { createInterface } from 'node:readline';
import { WebSocketServer, type WebSocket } from 'ws';
import type { AddressInfo } from 'node:net';
import { Hub } from '../../src/hub/index.js';
import { DEFAULT_MAX_MESSAGE_SIZE } from '../../src/transport/transport.js';

async function main(): Promise<void> {
  const mode = process.argv[2];
  let port: number;
  if (mode === 'hub') {
    const hub = await Hub.start({ dataDir: process.argv[3]!, host: '127.0.0.1', port: 0, streamRatePerSecond: 0 });
    port = hub.port;
  } else if (mode === 'fleet') {
    const hub = await Hub.start({
      redis: { url: process.argv[3]!, keyPrefix: process.argv[4]! },
      publicHost: process.argv[5]!,
      host: '127.0.0.1',
      port: 0,
      streamRatePerSecond: 0,
    });
    port = hub.port;
  } else if (mode === 'bare') {
    const wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      perMessageDeflate: false,
      maxPayload: DEFAULT_MAX_MESSAGE_SIZE,
      clientTracking: false,
    });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const waiting = new Map<string, WebSocket>();
    wss.on('connection', (ws, req) => {
      const id = req.url ?? '';
      const other = waiting.get(id);
      if (!other) {
        waiting.set(id, ws);
        return;
      }
      waiting.delete(id);
      ws.on('message', (d: Buffer) => other.send(d));
      other.on('message', (d: Buffer) => ws.send(d));
      ws.on('close', () => other.close());
      other.on('close', () => ws.close());
    });
    port = (wss.address() as AddressInfo).port;
  } else {
    throw new Error(`unknown mode ${mode}`);
  }
  process.stdout.write(`${JSON.stringify({ port })}\n`);
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (line.trim() === 'rss') {
      const gc = (globalThis as { gc?: () => void }).gc;
      gc?.();
      gc?.();
      process.stdout.write(`${JSON.stringify({ rss: process.memoryUsage().rss })}\n`);
    }
  });
  rl.on('close', () => process.exit(0));
}

void main();
