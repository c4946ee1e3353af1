/**
 * The service side of the tunnel: listens on local ports and carries every accepted TCP
 * connection as a channel through the one device stream (`--forward`), or lets a SOCKS5 client
 * name the target (`--socks`). A new connection costs no hub round trip once the stream is open.
 */
import net from 'node:net';
import { once } from 'node:events';
import type { Channel } from '../mux/index.js';
import { DevstreamsError } from '../errors.js';
import { type BridgeStats, bridge } from './bridge.js';
import type { ForwardSpec } from './forward-spec.js';
import type { SessionSource } from './session-source.js';
import { readSocksRequest, socksReply, socksReplyCode } from './socks5.js';

/** Where the service proxy gets its device session, what it listens on, and what it reports. */
export interface ServiceProxyOptions {
  source: SessionSource;
  forwards: ForwardSpec[];
  socks?: { host: string; port: number };
  /** Told about each connection, for logs; a closed one with what it carried. */
  onConnection?(event: ConnectionEvent): void;
  /** Told, per forwarded connection, how long after it was accepted the device accepted its channel, ms. */
  onChannelOpen?(ms: number): void;
}

/** One local connection's fate: opened, refused on the way (failed), or closed with its stats. */
export interface ConnectionEvent {
  listener: string;
  target: string;
  outcome: 'opened' | 'failed' | 'closed';
  error?: Error;
  stats?: BridgeStats;
}

/** A listener the proxy bound, with the port it got (0 asks for any); `target` for forwards. */
export interface BoundListener {
  kind: 'forward' | 'socks';
  host: string;
  port: number;
  target?: string;
}

/** Local listeners (forwards and SOCKS5) whose connections each become a channel on the shared device session. */
export class ServiceProxy {
  private readonly servers: net.Server[] = [];
  private readonly sockets = new Set<net.Socket>();
  readonly listeners: BoundListener[] = [];

  constructor(private readonly options: ServiceProxyOptions) {}

  /** Binds every listener. Rejects (and closes what it bound) if any port is taken. */
  async start(): Promise<BoundListener[]> {
    try {
      for (const f of this.options.forwards) {
        // Connections are labelled with the bound port (a spec may say 0: any free port).
        let label = `${f.localPort}`;
        const server = this.listen((socket) => this.forward(socket, f.targetHost, f.targetPort, label));
        const port = await this.bind(server, f.bindHost, f.localPort);
        label = `${port}`;
        this.listeners.push({ kind: 'forward', host: f.bindHost, port, target: `${f.targetHost}:${f.targetPort}` });
      }
      if (this.options.socks) {
        const server = this.listen((socket) => void this.socks(socket));
        const port = await this.bind(server, this.options.socks.host, this.options.socks.port);
        this.listeners.push({ kind: 'socks', host: this.options.socks.host, port });
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    return this.listeners;
  }

  /** Local connections open now (forwards and SOCKS). */
  get connectionCount(): number {
    return this.sockets.size;
  }

  /** Opens the device stream now rather than on the first connection (`--eager`). */
  async warmUp(): Promise<void> {
    await this.options.source.get();
  }

  /**
   * Stops listening, then waits for the connections still open to close on their own (as the
   * CLI's first Ctrl-C does; `server.close()` resolves only then), and closes the device stream.
   * A caller that must not wait destroys its sockets or exits, as the CLI's second Ctrl-C does.
   */
  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    for (const socket of this.sockets) socket.end();
    await this.options.source.close();
    for (const socket of this.sockets) socket.destroy();
  }

  private listen(onSocket: (socket: net.Socket) => void): net.Server {
    const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      onSocket(socket);
    });
    this.servers.push(server);
    return server;
  }

  private async bind(server: net.Server, host: string, port: number): Promise<number> {
    server.listen(port, host);
    try {
      await Promise.race([once(server, 'listening'), once(server, 'error').then(([err]) => Promise.reject(err as Error))]);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      throw new DevstreamsError('ERR_CONFIG', `cannot listen on ${host}:${port}: ${e.code ?? e.message}`, { cause: err });
    }
    return (server.address() as net.AddressInfo).port;
  }

  private async openChannel(host: string, port: number): Promise<Channel> {
    const session = await this.options.source.get();
    return session.openChannel({ host, port });
  }

  private forward(socket: net.Socket, host: string, port: number, listener: string): void {
    socket.on('error', () => {}); // reported through the bridge once joined; before that the socket just goes
    const accepted = performance.now();
    // The OPEN waits for the client's first bytes, at most until the loop has polled once more:
    // a client that writes on connect (most) has its bytes in the kernel by then, and they leave
    // in the OPEN's record (one seal, one write, one hub hop and one read at the device fewer
    // than an OPEN alone, then the data). A client that waits for the server to speak first
    // costs that one turn of the loop. The socket is read from now on ('readable' starts it);
    // what it reads is held until the channel is open.
    let waiting: NodeJS.Immediate | undefined;
    const open = (): void => {
      if (waiting === undefined) return;
      clearImmediate(waiting);
      waiting = undefined;
      socket.off('readable', open);
      if (socket.destroyed) {
        // Reset by the client while the OPEN waited: no channel was asked for, none is opened.
        const error = new DevstreamsError('ERR_CHANNEL_RESET', 'local connection closed before its channel was opened');
        this.options.onConnection?.({ listener, target: `${host}:${port}`, outcome: 'failed', error });
        return;
      }
      this.openForward(socket, host, port, listener, accepted);
    };
    // An immediate set now runs before the next poll: the one it sets runs after it.
    waiting = setImmediate(() => {
      if (waiting !== undefined) waiting = setImmediate(open);
    });
    socket.once('readable', open);
  }

  private openForward(socket: net.Socket, host: string, port: number, listener: string, accepted: number): void {
    const target = `${host}:${port}`;
    this.openChannel(host, port).then(
      (channel) => {
        if (this.options.onChannelOpen) channel.once('accepted', () => this.options.onChannelOpen?.(performance.now() - accepted));
        this.options.onConnection?.({ listener, target, outcome: 'opened' });
        // What was read while the OPEN waited goes right behind it; the bridge then takes the
        // socket's reads over (into the shared buffer, which it does only with nothing held).
        if (!channel.destroyed)
          for (let held = socket.read() as Buffer | null; held !== null; held = socket.read() as Buffer | null) channel.write(held);
        bridge(socket, channel, {
          onDone: (error, stats) => this.options.onConnection?.({ listener, target, outcome: 'closed', error, stats }),
        });
        socket.resume();
      },
      (err: Error) => {
        this.options.onConnection?.({ listener, target, outcome: 'failed', error: err });
        socket.resetAndDestroy();
      },
    );
  }

  private async socks(socket: net.Socket): Promise<void> {
    socket.on('error', () => {});
    socket.resume();
    const request = await readSocksRequest(socket);
    if (!request) return;
    const target = `${request.host}:${request.port}`;
    let channel: Channel;
    try {
      channel = await this.openChannel(request.host, request.port);
    } catch (err) {
      this.options.onConnection?.({ listener: 'socks', target, outcome: 'failed', error: err as Error });
      socket.end(socksReply(0x01));
      return;
    }
    // SOCKS clients wait for the reply before sending, so wait for the device's answer.
    const answer = await new Promise<DevstreamsError | undefined>((resolve) => {
      channel.once('accepted', () => resolve(undefined));
      channel.once('error', (err: Error) =>
        resolve(err instanceof DevstreamsError ? err : new DevstreamsError('ERR_CHANNEL_RESET', err.message)),
      );
    });
    if (answer) {
      this.options.onConnection?.({ listener: 'socks', target, outcome: 'failed', error: answer });
      socket.end(socksReply(socksReplyCode(answer.code)));
      return;
    }
    socket.write(socksReply(0x00));
    this.options.onConnection?.({ listener: 'socks', target, outcome: 'opened' });
    bridge(socket, channel, {
      onDone: (error, stats) => this.options.onConnection?.({ listener: 'socks', target, outcome: 'closed', error, stats }),
    });
    socket.resume();
  }
}
