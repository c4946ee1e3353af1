/** Real TCP targets for proxy tests: an echo-until-EOF server and helpers to talk to ports. */
import net from 'node:net';
import { createHash } from 'node:crypto';

export interface Target {
  port: number;
  close(): Promise<void>;
}

/** Echoes every byte back and half-closes after the client's EOF (like `cat`). */
export async function startEchoServer(): Promise<Target> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Sends `data`, half-closes, and resolves with what came back until the server's EOF. */
export function echoRoundTrip(port: number, data: Buffer, host = '127.0.0.1'): Promise<{ hash: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host, allowHalfOpen: true });
    const hash = createHash('sha256');
    let bytes = 0;
    socket.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
    });
    socket.on('end', () => {
      socket.end();
      resolve({ hash: hash.digest('hex'), bytes });
    });
    socket.on('error', reject);
    socket.on('connect', () => socket.end(data));
  });
}

/** A port nothing listens on (bound then closed). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
