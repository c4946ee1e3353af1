/**
 * Parses `--forward [BIND:]LPORT:HOST:PORT` (ssh -L syntax). IPv6 addresses go in brackets.
 */
import { DevstreamsError } from '../errors.js';

/** One `--forward`: a local listener and the target the device connects it to. */
export interface ForwardSpec {
  bindHost: string;
  localPort: number;
  targetHost: string;
  targetPort: number;
}

/** Splits on colons outside [brackets]. */
function splitColons(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '[') depth++;
    if (ch === ']') depth--;
    if (ch === ':' && depth === 0) {
      parts.push(current);
      current = '';
    } else current += ch;
  }
  parts.push(current);
  return parts;
}

function port(text: string, what: string, spec: string, allowZero: boolean): number {
  const n = Number(text);
  if (!/^\d{1,5}$/.test(text) || n > 65535 || (!allowZero && n === 0)) {
    throw new DevstreamsError(
      'ERR_CONFIG',
      `bad --forward "${spec}": ${what} "${text}" must be a port number${allowZero ? ' (0 = any free port)' : ''}`,
    );
  }
  return n;
}

const unbracket = (h: string): string => (h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h);

/** Parses `[BIND:]LPORT:HOST:PORT` (IPv6 in brackets); the bind address defaults to loopback. */
export function parseForward(spec: string): ForwardSpec {
  const parts = splitColons(spec);
  if (parts.length !== 3 && parts.length !== 4) {
    throw new DevstreamsError('ERR_CONFIG', `bad --forward "${spec}": expected [BIND:]LPORT:HOST:PORT, e.g. 2222:127.0.0.1:22`);
  }
  const [bind, lport, host, tport] = parts.length === 4 ? parts : ['127.0.0.1', ...parts];
  if (!host) throw new DevstreamsError('ERR_CONFIG', `bad --forward "${spec}": empty target host`);
  return {
    bindHost: unbracket(bind!) || '127.0.0.1',
    localPort: port(lport!, 'local port', spec, true),
    targetHost: unbracket(host),
    targetPort: port(tport!, 'target port', spec, false),
  };
}

/** `[BIND:]PORT` for --socks. */
export function parseListen(spec: string, flag: string): { host: string; port: number } {
  const parts = splitColons(spec);
  if (parts.length > 2 || parts.length === 0) throw new DevstreamsError('ERR_CONFIG', `bad ${flag} "${spec}": expected [BIND:]PORT`);
  const [host, p] = parts.length === 2 ? parts : ['127.0.0.1', parts[0]!];
  return { host: unbracket(host!) || '127.0.0.1', port: port(p!, 'port', spec, true) };
}
