/**
 * Who gets in, and what a refusal costs: a connection limit with a clear refusal, an idle timeout
 * before the first request (Node's header timeout only starts with the first byte), a per-address
 * limit on refused credentials (past it an address's tokens are checked against the local registry
 * only, and one that fails gets 429, so forged tokens stop costing registry reads while valid ones
 * from the same address still get in; IPv6 addresses count per /64), and sampled refusal log lines. Every refusal is
 * counted in /metrics (`devstreams_refused_total{reason}`), logged or not.
 */
import type { Server } from 'node:http';
import type { Socket } from 'node:net';
import { STATUS_CODES } from 'node:http';

/** Why the hub turned a client away, the `reason` label of `devstreams_refused_total`. */
export type RefusalReason = 'connection_limit' | 'idle_timeout' | 'request_timeout' | 'address_limit';

/** Limits of `Admission`, taken from the resolved hub config. */
export interface AdmissionOptions {
  maxConnections: number;
  idleTimeoutMs: number;
  /** Refused credentials one address may collect per window before it gets 429 at once; 0 = off. */
  refusalsPerAddress: number;
  refusalWindowMs: number;
  /** Refusal log lines per window; the rest are counted and summed up in the next line. */
  refusalLogLines: number;
  /** Plain HTTP: a refused connection gets a 503 it can read; TLS ones are closed. */
  tls: boolean;
  onRefused(reason: RefusalReason): void;
  log(fields: Record<string, unknown>, msg: string): void;
}

/** Addresses the per-address window remembers at once; the oldest are forgotten first. */
const MAX_TRACKED_ADDRESSES = 65_536;

/**
 * The key an address's refusals are counted under: an IPv6 address by its /64 (one host usually
 * holds a whole /64, so counting single addresses would let it rotate past the limit), an
 * IPv4-mapped IPv6 address as the IPv4 address it is, anything else as it is.
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(':')) return address;
  const bare = address.split('%')[0]!; // a zone index names a link, not a network
  const [head = '', tail] = bare.split('::', 2) as [string, string | undefined];
  const groups = head === '' ? [] : head.split(':');
  if (tail !== undefined) {
    const rest = tail === '' ? [] : tail.split(':');
    // An embedded IPv4 tail (::a.b.c.d) takes two groups; only the first four matter here.
    const restLen = rest.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
    for (let i = groups.length + restLen; i < 8; i++) groups.push('0');
    groups.push(...rest);
  }
  const prefix = groups.slice(0, 4).map((g) => (g.includes('.') ? g : (Number.parseInt(g, 16) || 0).toString(16)));
  while (prefix.length < 4) prefix.push('0');
  return `${prefix.join(':')}::/64`;
}

interface Window {
  start: number;
  refusals: number;
}

/** Guards the hub's listener: the connection limit, the idle timeout and the per-address refusal budget (see the module comment). */
export class Admission {
  private connections = 0;
  private readonly windows = new Map<string, Window>();
  private logWindowStart = 0;
  private logLines = 0;
  private suppressed = 0;

  constructor(private readonly o: AdmissionOptions) {}

  get connectionCount(): number {
    return this.connections;
  }

  /** Counts connections, refuses past the limit, and arms the idle timer. */
  attach(server: Server): void {
    server.on('connection', (socket: Socket) => {
      if (this.connections >= this.o.maxConnections) {
        this.o.onRefused('connection_limit');
        this.sampledLog({ reason: 'connection_limit', remote: socket.remoteAddress, limit: this.o.maxConnections }, 'connection refused');
        refuseConnection(socket, this.o.tls, this.o.maxConnections);
        return;
      }
      this.connections++;
      socket.once('close', () => this.connections--);
      if (!this.o.tls) this.armIdle(socket);
    });
    // With TLS the request runs on the TLS socket: its timer starts once the handshake is done
    // (the handshake itself is bounded by the TLS server's handshakeTimeout).
    if (this.o.tls) server.on('secureConnection', (socket: Socket) => this.armIdle(socket));
  }

  private armIdle(socket: Socket): void {
    socket.setTimeout(this.o.idleTimeoutMs);
    socket.once('timeout', () => {
      // Still before the first request (requestStarted clears it): nothing to answer.
      this.o.onRefused('idle_timeout');
      socket.destroy();
    });
  }

  /** The first request (or upgrade) arrived: from now on Node's own timeouts apply. */
  requestStarted(socket: Socket): void {
    socket.setTimeout(0);
  }

  /**
   * True when `address` (its /64, for IPv6) collected its refusals for this window: its tokens
   * are checked against the local registry only, and one that fails gets 429.
   */
  blocked(address: string | undefined): boolean {
    if (this.o.refusalsPerAddress === 0 || address === undefined) return false;
    const key = addressKey(address);
    const w = this.windows.get(key);
    if (!w) return false;
    if (performance.now() - w.start > this.o.refusalWindowMs) {
      this.windows.delete(key);
      return false;
    }
    return w.refusals >= this.o.refusalsPerAddress;
  }

  /** A request from `address` was refused for its credentials. */
  refusedCredentials(address: string | undefined, fields: Record<string, unknown>): void {
    if (this.o.refusalsPerAddress > 0 && address !== undefined) {
      const now = performance.now();
      const key = addressKey(address);
      let w = this.windows.get(key);
      if (!w || now - w.start > this.o.refusalWindowMs) {
        this.windows.delete(key);
        if (this.windows.size >= MAX_TRACKED_ADDRESSES) this.windows.delete(this.windows.keys().next().value as string);
        w = { start: now, refusals: 0 };
        this.windows.set(key, w);
      }
      w.refusals++;
    }
    this.sampledLog(fields, 'refused credentials');
  }

  /** A request turned away by the per-address limit (counted; logged like other refusals). */
  addressLimited(address: string | undefined): void {
    this.o.onRefused('address_limit');
    this.sampledLog({ reason: 'address_limit', remote: address, limit: this.o.refusalsPerAddress }, 'request refused');
  }

  /** At most `refusalLogLines` lines per window; the next line says how many were left out. */
  sampledLog(fields: Record<string, unknown>, msg: string): void {
    const now = performance.now();
    if (now - this.logWindowStart > this.o.refusalWindowMs) {
      this.logWindowStart = now;
      this.logLines = 0;
    }
    if (this.logLines >= this.o.refusalLogLines) {
      this.suppressed++;
      return;
    }
    this.logLines++;
    const extra = this.suppressed > 0 ? { suppressed: this.suppressed } : {};
    this.suppressed = 0;
    this.o.log({ ...fields, ...extra }, msg);
  }
}

/** A refusal the client can read (plain HTTP), then close; TLS connections just close. */
function refuseConnection(socket: Socket, tls: boolean, limit: number): void {
  socket.on('error', () => {});
  if (tls) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify({ code: 'ERR_HUB_UNAVAILABLE', message: `hub is at its connection limit (${limit}); retry later` });
  socket.end(
    `HTTP/1.1 503 ${STATUS_CODES[503]}\r\nConnection: close\r\nRetry-After: 1\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  const timer = setTimeout(() => socket.destroy(), 1000);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}
