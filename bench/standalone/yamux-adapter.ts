/**
 * Adapts a connected node `net.Socket` to the libp2p v3 `MessageStream` that
 * `@chainsafe/libp2p-yamux` v8's `createStreamMuxer` takes, so the bench can run yamux over the
 * same kind of socket as our mux. Backpressure policy matches our `TcpTransport`: report "can
 * send more" while the socket holds less than DEFAULT_TRANSPORT_HIGH_WATER unsent bytes, and
 * resume on the socket's 'drain'. Logging is a no-op (as in a libp2p node with DEBUG unset).
 */
import './mux-polyfill.js';
import type net from 'node:net';
import type { AbortOptions, Logger, MessageStreamDirection } from '@libp2p/interface';
import { AbstractMessageStream, type SendResult } from '@libp2p/utils';
import { DEFAULT_TRANSPORT_HIGH_WATER } from '../../src/transport/transport.js';

type SendList = Parameters<AbstractMessageStream['sendData']>[0];

function noopLogger(): Logger {
  const log = (() => {}) as unknown as Logger;
  Object.assign(log, { error: () => {}, trace: () => {}, enabled: false, newScope: () => log });
  return log;
}

export class SocketMessageStream extends AbstractMessageStream {
  private readonly socket: net.Socket;

  constructor(socket: net.Socket, direction: MessageStreamDirection) {
    super({ log: noopLogger(), direction, inactivityTimeout: 0 });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => this.safeDispatchEvent('drain'));
    socket.on('error', (err) => this.onTransportClosed(err));
    socket.on('close', () => this.onTransportClosed());
  }

  sendData(data: SendList): SendResult {
    const sentBytes = data.byteLength;
    this.socket.cork();
    for (const part of data) this.socket.write(part);
    this.socket.uncork();
    return { sentBytes, canSendMore: this.socket.writableLength <= DEFAULT_TRANSPORT_HIGH_WATER };
  }

  sendReset(): void {
    this.socket.resetAndDestroy();
  }

  sendPause(): void {
    this.socket.pause();
  }

  sendResume(): void {
    this.socket.resume();
  }

  async close(_options?: AbortOptions): Promise<void> {
    if (this.socket.destroyed) return;
    await new Promise<void>((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.end();
    });
  }
}
