/**
 * The SDKs' small HTTP client for the hub's JSON API: one keep-alive agent per client, JSON
 * error bodies turned into `DevstreamsError`s with the hub's code.
 */
import http from 'node:http';
import https from 'node:https';
import { DevstreamsError, type ErrorCode } from '../errors.js';
import { describeHubConnectError } from './connect-errors.js';

/** How long an HTTP call to the hub may take when the caller gives no limit, ms. */
export const DEFAULT_HTTP_TIMEOUT_MS = 30_000;
/** Largest response body the SDK reads, bytes. */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

/** A hub answer: status and parsed JSON body. */
export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: unknown;
}

/** Options of the hub's HTTP client. */
export interface HubHttpOptions {
  /** Extra trusted CA certificates (PEM), e.g. a development hub's self-signed certificate. */
  ca?: string | Buffer;
}

/** A response body parsed as JSON; undefined when empty or not JSON. */
export function parseJsonBody(bytes: Buffer): unknown {
  if (bytes.length === 0) return undefined;
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** Turns a hub error answer into a typed error (unknown codes become ERR_HUB_UNAVAILABLE). */
export function errorFromBody(status: number, body: unknown): DevstreamsError {
  const b = body as { code?: unknown; message?: unknown } | undefined;
  if (b && typeof b.code === 'string' && b.code.startsWith('ERR_')) {
    return new DevstreamsError(b.code as ErrorCode, typeof b.message === 'string' ? b.message : `hub answered ${status}`);
  }
  return new DevstreamsError('ERR_HUB_UNAVAILABLE', `hub answered HTTP ${status}`);
}

/** A keep-alive HTTP(S) client for the hub's API. */
export class HubHttp {
  private readonly agent: http.Agent;

  constructor(
    private readonly baseUrl: string,
    options: HubHttpOptions = {},
  ) {
    const secure = baseUrl.startsWith('https:');
    this.agent = secure
      ? new https.Agent({ keepAlive: true, ...(options.ca !== undefined ? { ca: options.ca } : {}) })
      : new http.Agent({ keepAlive: true });
  }

  /** Sends a request; resolves with status and parsed JSON body (or undefined), rejects on network errors. */
  request(
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: unknown,
    timeoutMs = DEFAULT_HTTP_TIMEOUT_MS,
  ): Promise<HttpResult> {
    const url = new URL(path, this.baseUrl);
    const lib = url.protocol === 'https:' ? https : http;
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = lib.request(
        url,
        {
          method,
          agent: this.agent,
          headers: {
            ...headers,
            ...(payload ? { 'content-type': 'application/json', 'content-length': String(payload.length) } : { 'content-length': '0' }),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (c: Buffer) => {
            size += c.length;
            if (size > MAX_RESPONSE_BYTES) {
              res.destroy(new DevstreamsError('ERR_HUB_UNAVAILABLE', 'hub response too large'));
              return;
            }
            chunks.push(c);
          });
          res.on('error', reject);
          res.on('end', () => {
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parseJsonBody(Buffer.concat(chunks)) });
          });
        },
      );
      req.on('error', (err) =>
        reject(
          err instanceof DevstreamsError
            ? err
            : new DevstreamsError('ERR_HUB_UNAVAILABLE', describeHubConnectError(url.host, err), { cause: err }),
        ),
      );
      req.setTimeout(timeoutMs, () =>
        req.destroy(new DevstreamsError('ERR_HUB_UNAVAILABLE', `hub at ${this.baseUrl} did not answer within ${timeoutMs} ms`)),
      );
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
