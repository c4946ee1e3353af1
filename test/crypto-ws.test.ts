// The record layer over the real WebSocket transport (what the hub relays): full-size records
// fit the ws message limit, and bytes arrive intact both ways.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { WebSocketTransport, connectWebSocketTransport, webSocketClientOptions } from '../src/transport/websocket.js';
import { DEFAULT_MAX_MESSAGE_SIZE } from '../src/transport/transport.js';
import { MAX_RECORD_PLAINTEXT } from '../src/crypto/constants.js';
import { collect, sameMessages, securePair, sendAll, until } from './crypto-helpers.js';

describe('record layer over WebSocket', () => {
  it('full-size records round-trip both ways', async () => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: DEFAULT_MAX_MESSAGE_SIZE, perMessageDeflate: false });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const port = (wss.address() as { port: number }).port;
    const serverSide = new Promise<WebSocketTransport>((r) => wss.once('connection', (ws) => r(new WebSocketTransport(ws))));
    try {
      const client = await connectWebSocketTransport(`ws://127.0.0.1:${port}/`, webSocketClientOptions());
      const [sa, sb] = await securePair(client, await serverSide, { prologue: 'stream-42' }, { prologue: 'stream-42' });
      expect(sa.maxMessageSize).toBe(MAX_RECORD_PLAINTEXT);
      const ea = collect(sa);
      const eb = collect(sb);
      const ab = Array.from({ length: 20 }, (_, i) => randomBytes(i % 2 ? MAX_RECORD_PLAINTEXT : 1 + i * 100));
      const ba = Array.from({ length: 20 }, () => randomBytes(MAX_RECORD_PLAINTEXT));
      await Promise.all([sendAll(sa, ea, ab), sendAll(sb, eb, ba)]);
      await until(() => eb.messages.length === ab.length && ea.messages.length === ba.length);
      expect(sameMessages(eb.messages, ab)).toBe(true);
      expect(sameMessages(ea.messages, ba)).toBe(true);
      sa.close();
      expect(await eb.closed).toBeUndefined();
    } finally {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    }
  });
});
