/** Small HTTP helpers for the hub's JSON routes. */
import type http from 'node:http';
import { DevstreamsError } from '../errors.js';

/** Writes a JSON answer. */
export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** Decodes one path segment; malformed percent-encoding is a 400. */
export function segment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new DevstreamsError('ERR_BAD_REQUEST', 'malformed percent-encoding in path');
  }
}

/** Reads a JSON object body of at most `maxBytes` (empty body: `{}`). */
export function readJson(req: http.IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        // Stop reading and answer; the connection closes after the answer.
        req.removeAllListeners('data');
        req.pause();
        reject(new DevstreamsError('ERR_PAYLOAD_TOO_LARGE', `request body exceeds ${maxBytes} bytes`));
        return;
      }
      chunks.push(c);
    });
    req.on('error', reject);
    req.on('end', () => {
      if (size === 0) return resolve({});
      try {
        const v: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
        resolve(v as Record<string, unknown>);
      } catch {
        reject(new DevstreamsError('ERR_BAD_REQUEST', 'request body must be a JSON object'));
      }
    });
  });
}
