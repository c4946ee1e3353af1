// Sealed records (zero-mask frames) sent in one turn of the event loop leave in one write at the
// turn's end instead of one write each: a real ws server and the client's real socket. Until the
// turn ends nothing has reached the kernel; right after it everything has, in order, and the
// server receives every message intact.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { connectWebSocket } from '../src/transport/ws-connect.js';
import { DEFAULT_MAX_MESSAGE_SIZE } from '../src/transport/transport.js';
import { until } from './crypto-helpers.js';

describe('zero-mask frames sent in one turn', () => {
  it('go to the socket together at the end of the turn, intact and in order', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: DEFAULT_MAX_MESSAGE_SIZE, perMessageDeflate: false });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const server = new Promise<WebSocket>((r) => wss.once('connection', (ws) => r(ws)));
    try {
      const t = await connectWebSocket(`ws://127.0.0.1:${(wss.address() as { port: number }).port}/`, { zeroMask: true });
      t.attach({ onMessage: () => {}, onDrain: () => {}, onClose: () => {} });
      const ws = await server;
      const got: Buffer[] = [];
      ws.on('message', (m: Buffer) => got.push(m));
      const sent = Array.from({ length: 6 }, (_, i) => [randomBytes(12), randomBytes(i * 9_000 + 1)]);
      expect(t.socket.writableLength).toBe(0);
      for (const parts of sent) t.send(parts);
      // Nothing handed to the kernel yet (a write each would have gone at once on loopback):
      // every frame waits in the socket's cork...
      expect(t.socket.writableLength).toBeGreaterThan(sent.reduce((n, p) => n + p[0]!.length + p[1]!.length, 0));
      // ...until the turn ends, then all of it goes.
      await new Promise<void>((r) => setImmediate(r));
      expect(t.socket.writableLength).toBe(0);
      await until(() => got.length === sent.length);
      for (const [i, parts] of sent.entries()) expect(got[i]!.equals(Buffer.concat(parts))).toBe(true);
      t.close();
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    }
  });
});
