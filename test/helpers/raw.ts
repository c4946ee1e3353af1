/** Raw HTTP and upgrade requests, for testing what the hub answers to bad or odd input. */
import http from 'node:http';
import net from 'node:net';

export interface RawAnswer {
  status: number;
  body: { code?: string; message?: string } | undefined;
  upgraded: boolean;
}

/** A WebSocket upgrade request to 127.0.0.1:`port` with a fixed key; `headers` add to or override it. */
export function upgradeRequest(port: number, path: string, headers: Record<string, string> = {}): http.ClientRequest {
  return http.request({
    host: '127.0.0.1',
    port,
    path,
    method: 'GET',
    headers: {
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-version': '13',
      'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
      ...headers,
    },
  });
}

/** Tries a WebSocket upgrade; resolves with the refusal status and JSON body, or `upgraded`. */
export function tryUpgrade(port: number, path: string, headers: Record<string, string> = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = upgradeRequest(port, path, headers);
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      resolve({ status: 101, body: undefined, upgraded: true });
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let body;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString());
        } catch {
          body = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body, upgraded: false });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Plain HTTP request with a string body. */
export async function httpCall(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let parsed;
        try {
          parsed = JSON.parse(Buffer.concat(chunks).toString());
        } catch {
          parsed = undefined;
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, upgraded: false });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Writes raw bytes to the port and resolves with what comes back before close (bounded). */
export function rawBytes(port: number, bytes: Buffer | string, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const t = setTimeout(() => s.destroy(), timeoutMs);
    s.on('data', (c) => chunks.push(c));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(t);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    s.end(bytes);
  });
}

/** Completes a WebSocket upgrade by hand, then writes `junk` as raw bytes; resolves when the hub closes the socket. */
export function upgradeThenJunk(
  port: number,
  path: string,
  headers: Record<string, string>,
  junk: Buffer,
  timeoutMs = 5000,
): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = upgradeRequest(port, path, headers);
    req.on('upgrade', (_res, socket) => {
      const t = setTimeout(() => {
        socket.destroy();
        resolve(false);
      }, timeoutMs);
      socket.on('error', () => {});
      socket.on('close', () => {
        clearTimeout(t);
        resolve(true);
      });
      socket.resume();
      socket.write(junk);
    });
    req.on('response', () => reject(new Error('upgrade refused')));
    req.on('error', reject);
    req.end();
  });
}
