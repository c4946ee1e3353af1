// Transport micro-benchmarks (report module "micro-transport"): how fast the message pipes under
// the mux move 64 KiB messages in one process, over memory, length-prefixed TCP and ws on
// loopback. The ceiling every layer above pays into.
import net from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  connectTcpTransport,
  connectWebSocketTransport,
  createMemoryTransportPair,
  TcpTransport,
  WebSocketTransport,
  webSocketClientOptions,
  type Transport,
} from '../src/transport/index.js';
import { registerMicroModule, type MicroTask } from './micro.js';

/** Payload of one message, and messages per operation. */
export const MICRO_MESSAGE_BYTES = 64 * 1024 - 64;
export const MICRO_MESSAGES_PER_OP = 16;

/** Returns a task that sends a batch from `a` (with backpressure) and resolves when `b` got all of it. */
function batchTask(name: string, a: Transport, b: Transport): MicroTask {
  const payload = Buffer.alloc(MICRO_MESSAGE_BYTES, 0x33);
  let received = 0;
  let waiter: (() => void) | undefined;
  let drainWaiter: (() => void) | undefined;
  b.attach({
    onMessage: () => {
      received += 1;
      if (received >= MICRO_MESSAGES_PER_OP && waiter !== undefined) {
        const w = waiter;
        waiter = undefined;
        w();
      }
    },
    onDrain: () => {},
    onClose: () => {},
  });
  a.attach({ onMessage: () => {}, onDrain: () => drainWaiter?.(), onClose: () => {} });
  return {
    name,
    bytes: MICRO_MESSAGE_BYTES * MICRO_MESSAGES_PER_OP,
    fn: async () => {
      received = 0;
      const done = new Promise<void>((resolve) => (waiter = resolve));
      for (let i = 0; i < MICRO_MESSAGES_PER_OP; i++) {
        if (!a.send([payload])) await new Promise<void>((resolve) => (drainWaiter = resolve));
      }
      await done;
    },
  };
}

async function tcpPair(): Promise<{ a: Transport; b: Transport; close: () => Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const a = await connectTcpTransport((server.address() as net.AddressInfo).port);
  const b = new TcpTransport(await accepted);
  return {
    a,
    b,
    close: async () => {
      a.close();
      b.close();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

async function wsPair(): Promise<{ a: Transport; b: Transport; close: () => Promise<void> }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: false });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const accepted = new Promise<WebSocket>((r) => wss.once('connection', r));
  const a = await connectWebSocketTransport(`ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}/`, webSocketClientOptions());
  const b = new WebSocketTransport(await accepted);
  return {
    a,
    b,
    close: async () => {
      a.close();
      b.close();
      await new Promise<void>((r) => wss.close(() => r()));
    },
  };
}

registerMicroModule({
  id: 'micro-transport',
  title: 'Transport micro-benchmarks (tinybench, in one process)',
  order: 10,
  description:
    `One operation sends ${MICRO_MESSAGES_PER_OP} messages of ${MICRO_MESSAGE_BYTES} bytes with backpressure and waits ` +
    'until the other end has them all; sender and receiver share one event loop.',
  async setup() {
    const [ma, mb] = createMemoryTransportPair();
    const tcp = await tcpPair();
    const ws = await wsPair();
    return {
      tasks: [
        batchTask('memory transport', ma, mb),
        batchTask('TCP transport (loopback)', tcp.a, tcp.b),
        batchTask('ws transport (loopback)', ws.a, ws.b),
      ],
      async teardown() {
        ma.close();
        await tcp.close();
        await ws.close();
      },
    };
  },
});
