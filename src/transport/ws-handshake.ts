/**
 * The opening handshake of RFC 6455 (section 4), both ends: the server's checks and 101 answer
 * (the hub's streaming endpoint), and the client's request and the check of its answer (the
 * SDKs' stream sockets).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { DevstreamsError } from '../errors.js';
import { randomFromPool } from '../util/random-pool.js';

const HANDSHAKE_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const KEY_PATTERN = /^[+/0-9A-Za-z]{22}==$/;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Header values may not carry line breaks (they would split the request). */
const FIELD_VALUE = /^[^\r\n\0]*$/;
/** Headers the handshake writes itself, or that would change how the request is framed. */
const RESERVED_HEADERS = new Set([
  'host',
  'upgrade',
  'connection',
  'content-length',
  'transfer-encoding',
  'sec-websocket-key',
  'sec-websocket-version',
  'sec-websocket-extensions',
  'sec-websocket-protocol',
]);

/** The Sec-WebSocket-Accept value that answers `key`. */
export function acceptValue(key: string): string {
  return createHash('sha1')
    .update(key + HANDSHAKE_GUID)
    .digest('base64');
}

/** Checks an upgrade request for a version-13 WebSocket handshake; returns the client's key. */
export function handshakeKey(req: IncomingMessage): string {
  const upgrade = req.headers.upgrade;
  if (upgrade === undefined || upgrade.toLowerCase() !== 'websocket')
    throw new DevstreamsError('ERR_BAD_REQUEST', 'Upgrade: websocket is required');
  if (req.headers['sec-websocket-version'] !== '13') throw new DevstreamsError('ERR_BAD_REQUEST', 'Sec-WebSocket-Version must be 13');
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !KEY_PATTERN.test(key.trim()))
    throw new DevstreamsError('ERR_BAD_REQUEST', 'Sec-WebSocket-Key is missing or malformed');
  return key.trim();
}

/** The first subprotocol the client offers, if any (echoed as `ws` servers do by default). */
export function firstSubprotocol(req: IncomingMessage): string | undefined {
  const offered = req.headers['sec-websocket-protocol'];
  if (typeof offered !== 'string') return undefined;
  const first = offered.split(',')[0]!.trim();
  return TOKEN.test(first) ? first : undefined;
}

/** The 101 response completing the handshake (no extension). */
export function handshakeResponse(key: string, protocol?: string): string {
  const proto = protocol !== undefined ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : '';
  return `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptValue(key)}\r\n${proto}\r\n`;
}

/** A client's upgrade request for `path` on `host`, with its fresh key. */
export function clientHandshakeRequest(
  path: string,
  host: string,
  headers: Readonly<Record<string, string>>,
): { key: string; request: string } {
  const key = randomFromPool(16).toString('base64');
  let extra = '';
  for (const [name, value] of Object.entries(headers)) {
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value))
      throw new DevstreamsError('ERR_CONFIG', `header ${JSON.stringify(name)} is not a valid HTTP header`);
    if (RESERVED_HEADERS.has(name.toLowerCase()))
      throw new DevstreamsError('ERR_CONFIG', `header ${JSON.stringify(name)} is set by the WebSocket handshake itself`);
    extra += `${name}: ${value}\r\n`;
  }
  const request = `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`;
  return { key, request };
}

/** A parsed HTTP response head: status and headers (names lower-cased, repeats joined by ", "). */
export interface ResponseHead {
  status: number;
  headers: Map<string, string>;
}

/** Parses an HTTP/1.1 response head (without the blank line that ends it). */
export function parseResponseHead(head: string): ResponseHead {
  const lines = head.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!m)
    throw new DevstreamsError(
      'ERR_TRANSPORT_HANDSHAKE',
      `server did not answer with HTTP: ${JSON.stringify((lines[0] ?? '').slice(0, 60))}`,
    );
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0)
      throw new DevstreamsError(
        'ERR_TRANSPORT_HANDSHAKE',
        `malformed header line in the server's answer: ${JSON.stringify(line.slice(0, 60))}`,
      );
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const had = headers.get(name);
    headers.set(name, had === undefined ? value : `${had}, ${value}`);
  }
  return { status: Number(m[1]), headers };
}

/** Checks a 101 answer against the request's key; nothing was offered beyond plain WebSocket. */
export function checkUpgradeAnswer(head: ResponseHead, key: string): void {
  const fail = (why: string): never => {
    throw new DevstreamsError('ERR_TRANSPORT_HANDSHAKE', `invalid WebSocket handshake answer: ${why}`);
  };
  if (head.headers.get('upgrade')?.toLowerCase() !== 'websocket') fail('Upgrade is not websocket');
  if (
    !(head.headers.get('connection') ?? '')
      .toLowerCase()
      .split(/\s*,\s*/)
      .includes('upgrade')
  )
    fail('Connection does not include Upgrade');
  if (head.headers.get('sec-websocket-accept') !== acceptValue(key)) fail('Sec-WebSocket-Accept does not match the key');
  if (head.headers.has('sec-websocket-extensions')) fail('the server chose an extension that was not offered');
  if (head.headers.has('sec-websocket-protocol')) fail('the server chose a subprotocol that was not offered');
}
