/** Builds connected session pairs over the memory and TCP transports for mux tests. */
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { Session, type SessionOptions } from '../../src/mux/index.js';
import { createMemoryTransportPair, TcpTransport, type Transport } from '../../src/transport/index.js';

export type PipeKind = 'memory' | 'tcp';

export interface TransportPair {
  a: Transport;
  b: Transport;
  cleanup(): Promise<void>;
}

export async function transportPair(kind: PipeKind): Promise<TransportPair> {
  if (kind === 'memory') {
    const [a, b] = createMemoryTransportPair();
    return { a, b, cleanup: async () => {} };
  }
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => client.once('connect', resolve));
  const serverSocket = await accepted;
  return {
    a: new TcpTransport(client),
    b: new TcpTransport(serverSocket),
    cleanup: async () => {
      client.destroy();
      serverSocket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface SessionPair {
  initiatorTransport: Transport;
  initiator: Session;
  responder: Session;
  cleanup(): Promise<void>;
}

export async function sessionPair(
  kind: PipeKind,
  options: Partial<SessionOptions> = {},
  responderOptions: Partial<SessionOptions> = {},
): Promise<SessionPair> {
  const pair = await transportPair(kind);
  const transport = pair.a;
  const initiator = new Session(transport, { ...options, role: 'initiator' });
  const responder = new Session(pair.b, { ...options, ...responderOptions, role: 'responder' });
  return {
    initiatorTransport: pair.a,
    initiator,
    responder,
    cleanup: async () => {
      initiator.close();
      responder.close();
      await pair.cleanup();
    },
  };
}

/** Reads a stream to its end and returns the SHA-256 and byte count. */
export function digestStream(stream: Duplex): Promise<{ hash: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    stream.on('data', (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    stream.once('end', () => resolve({ hash: hash.digest('hex'), bytes }));
    stream.once('error', reject);
  });
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Writes `data` in random-sized chunks honouring backpressure, then ends. */
export async function writeChunked(stream: Duplex, data: Buffer, maxChunk = 100_000): Promise<void> {
  let at = 0;
  while (at < data.length) {
    const n = Math.min(data.length - at, 1 + Math.floor(Math.random() * maxChunk));
    const ok = stream.write(data.subarray(at, at + n));
    at += n;
    // Each wait takes its listeners off again: one 'error' listener per drain piled up past
    // Node's limit of 10 (MaxListenersExceededWarning) on every long write.
    if (!ok)
      await new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          stream.off('error', onError);
          resolve();
        };
        const onError = (err: Error): void => {
          stream.off('drain', onDrain);
          reject(err);
        };
        stream.once('drain', onDrain);
        stream.once('error', onError);
      });
  }
  stream.end();
}

export { randomBytes };

export function once<T = unknown>(emitter: NodeJS.EventEmitter, event: string): Promise<T> {
  return new Promise((resolve) => emitter.once(event, (value: T) => resolve(value)));
}
