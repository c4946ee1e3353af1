/**
 * Device presence in Redis: key `presence:<deviceId>` holds the id of the node with the
 * device's control socket, with an expiry (`presenceTtlMs`). The node refreshes the expiry of
 * its devices while their sockets live (`keepAlive`), so the devices of a node that crashed
 * stop looking online after one TTL at most; a device that reconnects elsewhere overwrites
 * its entry at once. Scripts make each change conditional on the owner, so a late
 * `setOffline` or refresh from the old node never undoes a move.
 */
import type { Redis } from 'ioredis';
import type { PresenceStore } from '../presence.js';
import { guard } from './redis.js';

const SET_ONLINE = "local old = redis.call('GET', KEYS[1]) redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return old";
const SET_OFFLINE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";
// Refreshes (or restores, after a Redis restart) an entry this node owns; returns the other owner if any.
const KEEP =
  "local v = redis.call('GET', KEYS[1]) if v == false or v == ARGV[1] then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return '' end return v";

/** Connection, key prefix and expiry of Redis presence, and who to tell when a device moved here. */
export interface RedisPresenceOptions {
  redis: Redis;
  keyPrefix: string;
  presenceTtlMs: number;
  /** Called when `setOnline` found the device recorded at another node (it moved here). */
  onMoved?: (deviceId: string, fromNode: string) => void;
}

/** Presence shared by a fleet: which node holds each device, kept in Redis with an expiry (see the module comment). */
export class RedisPresenceStore implements PresenceStore {
  constructor(private readonly o: RedisPresenceOptions) {}

  private key(deviceId: string): string {
    return `${this.o.keyPrefix}presence:${deviceId}`;
  }

  async setOnline(deviceId: string, nodeId: string): Promise<void> {
    const old = (await guard(this.o.redis.eval(SET_ONLINE, 1, this.key(deviceId), nodeId, String(this.o.presenceTtlMs)))) as string | null;
    if (old !== null && old !== nodeId) this.o.onMoved?.(deviceId, old);
  }

  async setOffline(deviceId: string, nodeId: string): Promise<void> {
    await guard(this.o.redis.eval(SET_OFFLINE, 1, this.key(deviceId), nodeId));
  }

  async nodeOf(deviceId: string): Promise<string | undefined> {
    return (await guard(this.o.redis.get(this.key(deviceId)))) ?? undefined;
  }

  /** Refreshes the entries of `deviceIds` held at `nodeId`; returns those now recorded at another node. */
  async keepAlive(deviceIds: readonly string[], nodeId: string): Promise<string[]> {
    if (deviceIds.length === 0) return [];
    const p = this.o.redis.pipeline();
    for (const id of deviceIds) p.eval(KEEP, 1, this.key(id), nodeId, String(this.o.presenceTtlMs));
    const results = (await guard(p.exec())) ?? [];
    const moved: string[] = [];
    results.forEach(([err, v], i) => {
      if (!err && typeof v === 'string' && v !== '') moved.push(deviceIds[i]!);
    });
    return moved;
  }

  /** Removes this node's entries at once (graceful shutdown). */
  async leave(deviceIds: readonly string[], nodeId: string): Promise<void> {
    if (deviceIds.length === 0) return;
    const p = this.o.redis.pipeline();
    for (const id of deviceIds) p.eval(SET_OFFLINE, 1, this.key(id), nodeId);
    await guard(p.exec());
  }
}
