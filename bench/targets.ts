// Bench targets: a sink (counts an announced number of bytes, answers start and done bytes), an echo server and
// an HTTP server. They run in their own process (procs/targets-main.ts) so they never share the
// bench driver's event loop; the sink gets a process of its own so that a saturating transfer
// does not delay the echo server's replies (scenario "interactive").
import http from 'node:http';
import net from 'node:net';

/** Byte the sink answers once it has received the announced count. */
export const SINK_DONE_BYTE = 0x01;
/**
 * Byte the sink answers on the first payload bytes of a transfer. The sender times START to DONE:
 * both replies take the same way back, so that interval is the receive time at the sink, without
 * connection setup and without the path's round trip.
 */
export const SINK_START_BYTE = 0x02;
/** Size of the sink's header: the byte count to expect, as a big-endian uint64. */
export const SINK_HEADER_BYTES = 8;
/** Body of every HTTP target response. */
export const HTTP_BODY = 'hello from the bench target\n';

export interface TargetPorts {
  readonly sink: number;
  readonly echo: number;
  readonly http: number;
  /** An `iperf3 -s` (bench/iperf3.ts); a port nothing listens on when iperf3 is not installed. */
  readonly iperf: number;
}
export type TargetName = keyof TargetPorts;
/** Every target a path forwards to, in forward order. */
export const TARGET_NAMES: readonly TargetName[] = ['sink', 'echo', 'http', 'iperf'];
/** The targets this module serves itself (iperf3 is its own program). */
export type NodeTargetName = Exclude<TargetName, 'iperf'>;
export const NODE_TARGET_NAMES: readonly NodeTargetName[] = ['sink', 'echo', 'http'];

/** Sink protocol: [u64 N][N bytes] -> [SINK_START_BYTE][SINK_DONE_BYTE]; repeatable on one connection. */
function onSinkConnection(sock: net.Socket): void {
  sock.setNoDelay(true);
  let header: Buffer = Buffer.alloc(0);
  let remaining = -1; // bytes still expected; -1 = waiting for a header
  let started = false;
  sock.on('data', (chunk: Buffer) => {
    let off = 0;
    while (off < chunk.length) {
      if (remaining < 0) {
        const need = SINK_HEADER_BYTES - header.length;
        const part = chunk.subarray(off, off + need);
        header = header.length === 0 ? part : Buffer.concat([header, part]);
        off += part.length;
        if (header.length < SINK_HEADER_BYTES) return;
        remaining = Number(header.readBigUInt64BE(0));
        header = Buffer.alloc(0);
      }
      const take = Math.min(chunk.length - off, remaining);
      if (take > 0 && !started) {
        started = true;
        sock.write(Buffer.of(SINK_START_BYTE));
      }
      remaining -= take;
      off += take;
      if (remaining === 0) {
        sock.write(Buffer.of(SINK_DONE_BYTE));
        remaining = -1;
        started = false;
      }
    }
  });
  sock.on('error', () => sock.destroy());
}

function onEchoConnection(sock: net.Socket): void {
  sock.setNoDelay(true);
  sock.pipe(sock);
  sock.on('error', () => sock.destroy());
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('target: no port');
  return addr.port;
}

export interface RunningTargets {
  readonly ports: Partial<TargetPorts>;
  close(): Promise<void>;
}

/** Starts the named targets (all by default) in this process. */
export async function startTargets(which: readonly NodeTargetName[] = NODE_TARGET_NAMES): Promise<RunningTargets> {
  const body = Buffer.from(HTTP_BODY);
  const make: Record<NodeTargetName, () => net.Server> = {
    sink: () => net.createServer(onSinkConnection),
    echo: () => net.createServer(onEchoConnection),
    http: () => {
      const web = http.createServer((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length });
        res.end(body);
      });
      web.keepAliveTimeout = 30_000;
      return web;
    },
  };
  const servers: net.Server[] = [];
  const ports: Partial<Record<TargetName, number>> = {};
  const sockets = new Set<net.Socket>();
  for (const name of which) {
    const srv = make[name]();
    srv.on('connection', (c: net.Socket) => {
      sockets.add(c);
      c.on('close', () => sockets.delete(c));
    });
    servers.push(srv);
    ports[name] = await listen(srv);
  }
  return {
    ports,
    async close() {
      for (const c of sockets) c.destroy();
      await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}
