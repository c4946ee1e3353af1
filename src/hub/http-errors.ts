/**
 * How the hub answers errors: a stable code maps to one HTTP status, and every error body is
 * JSON `{code, message}`. Used by the HTTP routes and by refused WebSocket upgrades.
 */
import type { Duplex } from 'node:stream';
import type { ServerResponse } from 'node:http';
import { STATUS_CODES } from 'node:http';
import { DevstreamsError, type ErrorCode } from '../errors.js';

const STATUS: Partial<Record<ErrorCode, number>> = {
  ERR_AUTH_MISSING: 401,
  ERR_AUTH_INVALID: 401,
  ERR_AUTH_EXPIRED: 401,
  ERR_AUTH_SCOPE: 401,
  ERR_AUTH_TOKEN_REUSED: 403,
  ERR_DEVICE_NOT_FOUND: 404,
  ERR_DEVICE_OFFLINE: 404,
  ERR_NOT_FOUND: 404,
  ERR_METHOD_NOT_ALLOWED: 405,
  ERR_DEVICE_EXISTS: 409,
  ERR_PAYLOAD_TOO_LARGE: 413,
  ERR_RATE_LIMITED: 429,
  ERR_BAD_REQUEST: 400,
  ERR_REQUEST_TIMEOUT: 408,
  ERR_CONNECTION_STRING: 400,
  ERR_STREAM_TIMEOUT: 504,
  ERR_HUB_SHUTDOWN: 503,
  ERR_HUB_UNAVAILABLE: 503,
};

/** HTTP status for an error code (500 for anything unexpected). */
export function statusFor(code: ErrorCode): number {
  return STATUS[code] ?? 500;
}

/** Normalises anything thrown into a DevstreamsError without leaking internals. */
export function toHubError(err: unknown): DevstreamsError {
  if (err instanceof DevstreamsError) return err;
  return new DevstreamsError('ERR_INTERNAL', 'internal hub error');
}

/** Writes a JSON error response. */
export function sendError(res: ServerResponse, err: unknown): void {
  const e = toHubError(err);
  const body = JSON.stringify({ code: e.code, message: e.message });
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const status = statusFor(e.code);
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  // After an oversized body we stopped reading: close rather than reuse the connection.
  if (status === 413) headers.connection = 'close';
  res.writeHead(status, headers);
  res.end(body);
}

/** Refuses a WebSocket upgrade with an HTTP status and JSON body, then closes the socket. */
export function refuseUpgrade(socket: Duplex, err: unknown): void {
  const e = toHubError(err);
  const status = statusFor(e.code);
  const body = JSON.stringify({ code: e.code, message: e.message });
  if (socket.writable) {
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
  }
  // The peer may never read our answer; do not let a half-open socket linger.
  const timer = setTimeout(() => socket.destroy(), 1000);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}
