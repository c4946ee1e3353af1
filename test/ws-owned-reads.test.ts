// The client transport reading into the process-wide shared buffer (`ownedReadBytes`): a real
// `ws` server sends many messages of random sizes, so reads cut messages and frame headers at
// arbitrary points and every read overwrites the last. A handler that borrows checks each message
// while it is delivered; one that does not keeps every buffer and checks them at the end (they
// must be copies). Pings cut by a read are answered intact.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { connectWebSocket } from '../src/transport/ws-connect.js';
import { sharedReadBuffer } from '../src/util/shared-read-buffer.js';
import { DEFAULT_MAX_MESSAGE_SIZE } from '../src/transport/transport.js';
import { until } from './crypto-helpers.js';

const READ_BYTES = 64 * 1024; // small, so most messages are cut by the end of a read

async function withServer(run: (port: number, server: Promise<WebSocket>) => Promise<void>): Promise<void> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: DEFAULT_MAX_MESSAGE_SIZE, perMessageDeflate: false });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const server = new Promise<WebSocket>((r) => wss.once('connection', (ws) => r(ws)));
  try {
    await run((wss.address() as { port: number }).port, server);
  } finally {
    for (const c of wss.clients) c.terminate();
    await new Promise<void>((r) => wss.close(() => r()));
  }
}

/** Random sizes from 0 to a full message, and a few pings between them. */
function messages(count: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => randomBytes(i % 5 === 0 ? DEFAULT_MAX_MESSAGE_SIZE : Math.floor(Math.random() * 40_000)));
}

async function sendFrom(ws: WebSocket, msgs: readonly Buffer[]): Promise<void> {
  for (const [i, m] of msgs.entries()) {
    if (i % 7 === 3) ws.ping(Buffer.from(`ping ${i}`));
    await new Promise<void>((r, j) => ws.send(m, { binary: true }, (e) => (e ? j(e) : r())));
  }
}

describe('reads into the shared buffer', () => {
  it.each([true, false])('every message arrives intact (handler borrows: %s)', async (borrows) => {
    await withServer(async (port, server) => {
      const t = await connectWebSocket(`ws://127.0.0.1:${port}/`, { ownedReadBytes: READ_BYTES });
      const want = messages(300);
      const kept: Buffer[] = [];
      let checked = 0;
      let bad = 0;
      const pongs: string[] = [];
      const ws = await server;
      ws.on('pong', (p) => pongs.push(p.toString()));
      const take = (m: Buffer): void => {
        if (borrows) {
          if (!m.equals(want[checked]!)) bad++;
          checked++;
        } else kept.push(m);
      };
      t.attach({
        borrowsReads: borrows,
        onMessage: take,
        onMessageParts: (parts) => take(Buffer.concat(parts)),
        onDrain: () => {},
        onClose: () => {},
      });
      await sendFrom(ws, want);
      await until(() => (borrows ? checked : kept.length) === want.length, 10_000);
      if (borrows) expect(bad).toBe(0);
      else expect(kept.every((m, i) => m.equals(want[i]!))).toBe(true);
      // The shared buffer was really read into: the last read ended with the last message's tail.
      expect(sharedReadBuffer(READ_BYTES).includes(want.at(-1)!.subarray(-64))).toBe(true);
      await until(() => pongs.length === want.filter((_, i) => i % 7 === 3).length);
      expect(pongs[0]).toBe('ping 3');
      t.close();
    });
  });
});
