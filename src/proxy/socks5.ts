/**
 * The SOCKS5 CONNECT handshake (RFC 1928, no authentication) for `service-proxy --socks`: reads
 * the client's greeting and request, returns the requested target, and writes the reply once the
 * device has answered. Only what CONNECT needs; BIND and UDP ASSOCIATE are refused.
 */
import type net from 'node:net';
import type { ErrorCode } from '../errors.js';

/** The target a SOCKS5 client asked to CONNECT to. */
export interface SocksRequest {
  host: string;
  port: number;
}

/** Upper bound on handshake bytes, so a hostile client cannot make us buffer without limit. */
const MAX_HANDSHAKE = 600;

/** Reads greeting and CONNECT request. Resolves with the target, or null after replying an error. */
export function readSocksRequest(socket: net.Socket, timeoutMs = 10_000): Promise<SocksRequest | null> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    let stage: 'greeting' | 'request' = 'greeting';
    const timer = setTimeout(() => fail(), timeoutMs);
    // The client went before its request was complete. Removed with the other listeners once it
    // is: left on, a half-close later in the connection destroyed the socket.
    const gone = (): void => fail();
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', gone);
      socket.off('error', gone);
    };
    function fail(reply?: number): void {
      cleanup();
      if (reply !== undefined && !socket.destroyed) socket.end(socksReply(reply));
      else socket.destroy();
      resolve(null);
    }
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length > MAX_HANDSHAKE) return fail(0x01);
      if (stage === 'greeting') {
        if (buf.length < 2) return;
        if (buf[0] !== 0x05) return fail();
        const n = buf[1]!;
        if (buf.length < 2 + n) return;
        const methods = buf.subarray(2, 2 + n);
        buf = buf.subarray(2 + n);
        if (!methods.includes(0x00)) {
          cleanup();
          socket.end(Buffer.from([0x05, 0xff]));
          resolve(null);
          return;
        }
        socket.write(Buffer.from([0x05, 0x00]));
        stage = 'request';
      }
      if (buf.length < 5) return;
      if (buf[0] !== 0x05) return fail();
      if (buf[1] !== 0x01) return fail(0x07); // command not supported
      const atyp = buf[3];
      let host: string;
      let at: number;
      if (atyp === 0x01) {
        if (buf.length < 10) return;
        host = `${buf[4]}.${buf[5]}.${buf[6]}.${buf[7]}`;
        at = 8;
      } else if (atyp === 0x03) {
        const len = buf[4]!;
        if (buf.length < 5 + len + 2) return;
        host = buf.toString('latin1', 5, 5 + len);
        at = 5 + len;
      } else if (atyp === 0x04) {
        if (buf.length < 22) return;
        const groups: string[] = [];
        for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(4 + i * 2).toString(16));
        host = groups.join(':');
        at = 20;
      } else return fail(0x08); // address type not supported
      const port = buf.readUInt16BE(at);
      const rest = buf.subarray(at + 2);
      cleanup();
      socket.pause(); // no data listener now: hold bytes until the bridge pipes them

      if (rest.length > 0) socket.unshift(rest);
      resolve({ host, port });
    };
    socket.on('data', onData);
    socket.once('end', gone);
    socket.once('error', gone);
  });
}

/** The SOCKS reply code for a channel outcome. */
export function socksReplyCode(code: ErrorCode | undefined): number {
  switch (code) {
    case undefined:
      return 0x00;
    case 'ERR_TARGET_NOT_ALLOWED':
      return 0x02;
    case 'ERR_TARGET_REFUSED':
      return 0x05;
    case 'ERR_TARGET_UNREACHABLE':
    case 'ERR_OPEN_TIMEOUT':
      return 0x04;
    default:
      return 0x01;
  }
}

/** A reply with the bound address 0.0.0.0:0 (clients do not use it for CONNECT). */
export function socksReply(code: number): Buffer {
  return Buffer.from([0x05, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
}
