/**
 * The registry API: add, read, list, remove devices and rotate their keys over HTTP (owner
 * token); read and list devices with their status (online, where, last seen) with a service
 * token too, without secrets. Changes go through the same file-backed registry the CLI writes.
 */
import type http from 'node:http';
import { DevstreamsError } from '../errors.js';
import type { DeviceRecord } from './registry.js';
import { authenticatePolicy } from './authenticate.js';
import { readJson, segment, sendJson } from './http-util.js';
import type { HubContext } from './context.js';

/** What the registry routes need from the hub. */
export interface RegistryApiContext extends Pick<HubContext, 'config' | 'registry' | 'presence' | 'control' | 'hostName'> {
  deviceConnectionString(rec: DeviceRecord): string;
}

/** Throws 405 unless the method is `m`. */
export function only(method: string, path: string, m: string): void {
  if (method !== m) throw new DevstreamsError('ERR_METHOD_NOT_ALLOWED', `${method} not allowed on ${path.slice(0, 80)}`);
}

/**
 * A device as the API shows it: `connected` and `node` from presence (fleet-wide), `lastSeen`
 * (ISO time of the last connect or disconnect) as far as this node saw it.
 */
async function deviceView(ctx: RegistryApiContext, rec: DeviceRecord, withSecret: boolean): Promise<Record<string, unknown>> {
  const node = await ctx.presence.nodeOf(rec.deviceId);
  const seen = ctx.control.lastSeen(rec.deviceId);
  const view: Record<string, unknown> = {
    deviceId: rec.deviceId,
    createdAt: rec.createdAt,
    keyUpdatedAt: rec.keyUpdatedAt,
    connected: node !== undefined || ctx.control.isConnected(rec.deviceId),
  };
  if (node !== undefined) view.node = node;
  if (seen !== undefined) view.lastSeen = new Date(seen).toISOString();
  if (withSecret) view.connectionString = ctx.deviceConnectionString(rec);
  return view;
}

async function owner(ctx: RegistryApiContext, req: http.IncomingMessage): Promise<void> {
  await authenticatePolicy(req, ctx.registry, ctx.hostName(), ['owner'], ctx.config.clockSkewSeconds);
}

/** Reading device status: owner or service; true when the caller is the owner. */
async function reader(ctx: RegistryApiContext, req: http.IncomingMessage): Promise<boolean> {
  const who = await authenticatePolicy(req, ctx.registry, ctx.hostName(), ['owner', 'service'], ctx.config.clockSkewSeconds);
  return who.kind === 'policy' && who.policy === 'owner';
}

/** Serves `/devices` and `/devices/{id}[/rotate-key]`; false when the path is not one of them. */
export async function handleRegistryApi(
  ctx: RegistryApiContext,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  path: string,
  parts: string[],
  method: string,
): Promise<boolean> {
  if (path === '/devices') {
    only(method, path, 'GET');
    await reader(ctx, req);
    sendJson(res, 200, { devices: await Promise.all(ctx.registry.listDevices().map((d) => deviceView(ctx, d, false))) });
    return true;
  }
  if (parts.length === 3 && parts[1] === 'devices') {
    const deviceId = segment(parts[2]!);
    if (method === 'PUT') {
      await owner(ctx, req);
      const body = await readJson(req, ctx.config.maxBodyBytes);
      const key = body.key;
      if (key !== undefined && (typeof key !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(key) || Buffer.from(key, 'base64').length < 16)) {
        throw new DevstreamsError('ERR_BAD_REQUEST', 'key must be base64 of at least 16 bytes');
      }
      const rec = await ctx.registry.addDevice(deviceId, key as string | undefined);
      sendJson(res, 201, await deviceView(ctx, rec, true));
      return true;
    }
    if (method === 'GET') {
      const isOwner = await reader(ctx, req);
      const rec = ctx.registry.getDevice(deviceId);
      if (!rec) throw new DevstreamsError('ERR_DEVICE_NOT_FOUND', `device ${deviceId} is not registered`);
      sendJson(res, 200, await deviceView(ctx, rec, isOwner));
      return true;
    }
    if (method === 'DELETE') {
      await owner(ctx, req);
      await ctx.registry.removeDevice(deviceId);
      ctx.control.revokeStale();
      res.writeHead(204);
      res.end();
      return true;
    }
    throw new DevstreamsError('ERR_METHOD_NOT_ALLOWED', `${method} not allowed on /devices/{id}`);
  }
  if (parts.length === 4 && parts[1] === 'devices' && parts[3] === 'rotate-key') {
    only(method, path, 'POST');
    await owner(ctx, req);
    const rec = await ctx.registry.rotateDeviceKey(segment(parts[2]!));
    ctx.control.revokeStale();
    sendJson(res, 200, await deviceView(ctx, rec, true));
    return true;
  }
  return false;
}
