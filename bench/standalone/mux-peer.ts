/**
 * Receiver side of the mux throughput bench, run as a child process (fork, IPC). On `listen`
 * it opens a TCP server on 127.0.0.1 (ephemeral port) for one implementation, sinks every
 * stream's bytes, and after the sender's end replies "done <bytes>" on that stream. `stop`
 * closes the server and its connections; `exit` ends the process.
 */
import './mux-polyfill.js';
import net from 'node:net';
import { yamux } from '@chainsafe/libp2p-yamux';
import type { Stream, StreamMessageEvent } from '@libp2p/interface';
import { Session } from '../../src/mux/index.js';
import { TcpTransport } from '../../src/transport/tcp.js';
import { selfCpuSeconds } from '../sampler.js';
import { SocketMessageStream } from './yamux-adapter.js';
import { encodeReply, type MuxImpl, type PeerCommand, type PeerReport } from './mux-common.js';

function report(message: PeerReport): void {
  process.send?.(message);
}

function fail(err: unknown): void {
  report({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) });
}

/** Sinks a node Readable/Writable pair (socket or channel) and replies after its end. */
function sinkDuplex(stream: NodeJS.ReadWriteStream & { on(event: 'error', fn: (err: Error) => void): unknown }): void {
  let bytes = 0;
  stream.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  stream.on('end', () => stream.end(encodeReply(bytes)));
  stream.on('error', fail);
}

function sinkYamux(stream: Stream): void {
  let bytes = 0;
  stream.addEventListener('message', (evt: StreamMessageEvent) => {
    bytes += evt.data.byteLength;
  });
  stream.addEventListener('remoteCloseWrite', () => {
    stream.send(encodeReply(bytes));
    stream.close().catch(fail);
  });
}

function onConnection(impl: MuxImpl, socket: net.Socket, sockets: Set<net.Socket>, closers: Array<() => void>): void {
  sockets.add(socket);
  socket.on('close', () => sockets.delete(socket));
  if (impl === 'raw') {
    socket.setNoDelay(true);
    sinkDuplex(socket);
  } else if (impl === 'mux') {
    const session = new Session(new TcpTransport(socket), { role: 'responder' });
    session.on('open', (request) => sinkDuplex(request.accept()));
    closers.push(() => session.close());
  } else {
    const muxer = yamux()().createStreamMuxer(new SocketMessageStream(socket, 'inbound'));
    muxer.addEventListener('stream', (evt) => sinkYamux(evt.detail));
    closers.push(() => muxer.abort(new Error('bench case over')));
  }
}

let server: net.Server | undefined;
const sockets = new Set<net.Socket>();
let closers: Array<() => void> = [];
let cpuAtListen = selfCpuSeconds();

function cpuSinceListen(): number {
  return (selfCpuSeconds() - cpuAtListen) * 1e6;
}

function stop(): void {
  const cpuMicros = cpuSinceListen();
  for (const close of closers) close();
  closers = [];
  for (const socket of sockets) socket.destroy();
  sockets.clear();
  const s = server;
  server = undefined;
  if (!s) {
    report({ type: 'stopped', cpuMicros });
    return;
  }
  s.close(() => report({ type: 'stopped', cpuMicros }));
}

process.on('message', (command: PeerCommand) => {
  try {
    if (command.type === 'listen') {
      if (server) throw new Error('already listening');
      cpuAtListen = selfCpuSeconds();
      const s = net.createServer((socket) => onConnection(command.impl, socket, sockets, closers));
      server = s;
      s.on('error', fail);
      s.listen(0, '127.0.0.1', () => {
        const address = s.address() as net.AddressInfo;
        report({ type: 'listening', port: address.port });
      });
    } else if (command.type === 'stop') {
      stop();
    } else {
      process.disconnect?.();
      process.exit(0);
    }
  } catch (err) {
    fail(err);
  }
});
process.on('uncaughtException', fail);
