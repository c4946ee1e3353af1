/**
 * The device registry in Redis, for a fleet of hub nodes (and for `devstreams registry
 * --redis`). Layout under the key prefix: hash `policies` (service, owner), hash `devices`
 * (id -> JSON record), hash `services` (name -> JSON record of a service identity), string
 * `endpoint` (JSON). Each node keeps a full local copy, loaded at
 * start and kept current by the `registry` pub/sub channel: a writer publishes `d:<id>`
 * (one device), `p` (policy keys and service identities) or `*` (reload everything); readers re-read what changed
 * and call `onExternalChange`, so a removal or key rotation on one node closes the device's
 * control socket on another at once. Before refusing a credential the hub forces a read of
 * that one device (`refresh(true, id)`), so a device added a moment ago is never refused
 * because a message is still in flight.
 */
import type { Redis } from 'ioredis';
import { DevstreamsError } from '../../errors.js';
import { isValidDeviceId, isValidServiceName } from '../../auth/connection-string.js';
import {
  checkServiceLimits,
  generateKey,
  type DeviceRecord,
  type HubEndpoint,
  type ServiceLimits,
  type ServiceRecord,
} from '../registry.js';
import type { RegistryStore } from '../registry-store.js';
import { guard } from './redis.js';

// Sets a field only when it exists: a rotation must not bring back a device removed meanwhile.
const SET_IF_EXISTS =
  "if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1 end return 0";

function parseRecord(text: string | null): DeviceRecord | undefined {
  if (text === null) return undefined;
  try {
    const r = JSON.parse(text) as DeviceRecord;
    return typeof r.deviceId === 'string' && typeof r.key === 'string' ? r : undefined;
  } catch {
    return undefined;
  }
}

function parseServices(all: Record<string, string>): Map<string, ServiceRecord> {
  const out = new Map<string, ServiceRecord>();
  for (const [name, text] of Object.entries(all)) {
    try {
      const r = JSON.parse(text) as ServiceRecord;
      if (r.name === name && typeof r.key === 'string') out.set(name, r);
    } catch {
      // a foreign or torn entry: not a credential
    }
  }
  return out;
}

/** Connections and key prefix of the Redis registry. */
export interface RedisRegistryOptions {
  /** Connection for commands. */
  redis: Redis;
  /** Connection in subscriber mode for change messages; without it `watch()` does nothing (CLI). */
  subscriber?: Redis;
  keyPrefix: string;
}

/** The fleet's registry: a local copy of the Redis hashes, kept current by pub/sub (see the module comment). */
export class RedisRegistry implements RegistryStore {
  private policies = { service: '', owner: '' };
  private devices = new Map<string, DeviceRecord>();
  private services = new Map<string, ServiceRecord>();
  private endpointValue: HubEndpoint | undefined;
  private readonly redis: Redis;
  private readonly keys: { policies: string; devices: string; services: string; endpoint: string; channel: string };
  onExternalChange: (() => void) | undefined;

  private constructor(private readonly o: RedisRegistryOptions) {
    this.redis = o.redis;
    const p = o.keyPrefix;
    this.keys = {
      policies: `${p}policies`,
      devices: `${p}devices`,
      services: `${p}services`,
      endpoint: `${p}endpoint`,
      channel: `${p}registry`,
    };
  }

  /** Opens the registry (creating the policy keys on first use) and loads the local copy. */
  static async open(o: RedisRegistryOptions): Promise<RedisRegistry> {
    const r = new RedisRegistry(o);
    // HSETNX: whichever node or CLI comes first creates the keys; the others keep them.
    await guard(r.redis.multi().hsetnx(r.keys.policies, 'service', generateKey()).hsetnx(r.keys.policies, 'owner', generateKey()).exec());
    await r.reloadAll();
    return r;
  }

  private async reloadAll(): Promise<void> {
    const [pol, devs, ep, svcs] = await guard(
      Promise.all([
        this.redis.hgetall(this.keys.policies),
        this.redis.hgetall(this.keys.devices),
        this.redis.get(this.keys.endpoint),
        this.redis.hgetall(this.keys.services),
      ]),
    );
    this.setPolicies(pol);
    this.services = parseServices(svcs);
    const next = new Map<string, DeviceRecord>();
    for (const [id, text] of Object.entries(devs)) {
      const rec = parseRecord(text);
      if (rec) next.set(id, rec);
    }
    this.devices = next;
    this.endpointValue = ep === null ? undefined : (JSON.parse(ep) as HubEndpoint);
  }

  private setPolicies(pol: Record<string, string>): void {
    if (typeof pol.service === 'string' && typeof pol.owner === 'string') this.policies = { service: pol.service, owner: pol.owner };
  }

  private async reloadDevice(deviceId: string): Promise<void> {
    const rec = parseRecord(await guard(this.redis.hget(this.keys.devices, deviceId)));
    if (rec) this.devices.set(deviceId, rec);
    else this.devices.delete(deviceId);
  }

  async refresh(force = false, deviceId?: string): Promise<void> {
    if (!force) return; // pub/sub keeps the copy current
    const [pol, dev, svcs] = await guard(
      Promise.all([
        this.redis.hgetall(this.keys.policies),
        deviceId !== undefined ? this.redis.hget(this.keys.devices, deviceId) : Promise.resolve(null),
        this.redis.hgetall(this.keys.services),
      ]),
    );
    this.setPolicies(pol);
    this.services = parseServices(svcs);
    if (deviceId !== undefined) {
      const rec = parseRecord(dev);
      if (rec) this.devices.set(deviceId, rec);
      else this.devices.delete(deviceId);
    }
  }

  watch(): () => void {
    const sub = this.o.subscriber;
    if (!sub) return () => {};
    const onMessage = (channel: string, message: string): void => {
      if (channel !== this.keys.channel) return;
      const apply = message.startsWith('d:')
        ? this.reloadDevice(message.slice(2))
        : message === 'p'
          ? this.refresh(true)
          : this.reloadAll();
      apply.then(
        () => this.onExternalChange?.(),
        () => {}, // Redis gone for a moment: the reload on resubscribe catches up
      );
    };
    // After a reconnect messages may have been missed: reload everything.
    const onReady = (): void => {
      this.reloadAll().then(
        () => this.onExternalChange?.(),
        () => {},
      );
    };
    sub.on('message', onMessage);
    sub.on('ready', onReady);
    void sub.subscribe(this.keys.channel).catch(() => {});
    return () => {
      sub.off('message', onMessage);
      sub.off('ready', onReady);
    };
  }

  private async publish(message: string): Promise<void> {
    await guard(this.redis.publish(this.keys.channel, message));
  }

  policyKey(policy: string): string | undefined {
    if (policy === 'service') return this.policies.service;
    if (policy === 'owner') return this.policies.owner;
    return this.services.get(policy)?.key;
  }

  getService(name: string): ServiceRecord | undefined {
    return this.services.get(name);
  }

  listServices(): ServiceRecord[] {
    return [...this.services.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  async addService(name: string, limits: ServiceLimits = {}): Promise<ServiceRecord> {
    if (!isValidServiceName(name))
      throw new DevstreamsError(
        'ERR_BAD_REQUEST',
        `invalid service name "${name.slice(0, 40)}" (1-64 of A-Z a-z 0-9 . _ -; not service or owner)`,
      );
    checkServiceLimits(limits);
    const now = new Date().toISOString();
    const rec: ServiceRecord = { name, key: generateKey(), createdAt: now, keyUpdatedAt: now, ...limits };
    const added = await guard(this.redis.hsetnx(this.keys.services, name, JSON.stringify(rec)));
    if (added === 0) throw new DevstreamsError('ERR_DEVICE_EXISTS', `service ${name} already exists`);
    this.services.set(name, rec);
    await this.publish('p');
    return rec;
  }

  async removeService(name: string): Promise<void> {
    const n = await guard(this.redis.hdel(this.keys.services, name));
    this.services.delete(name);
    if (n === 0) throw new DevstreamsError('ERR_NOT_FOUND', `service ${name} does not exist`);
    await this.publish('p');
  }

  async rotateServiceKey(name: string): Promise<ServiceRecord> {
    const old = parseServices({ [name]: (await guard(this.redis.hget(this.keys.services, name))) ?? '' }).get(name);
    if (!old) throw new DevstreamsError('ERR_NOT_FOUND', `service ${name} does not exist`);
    const rec: ServiceRecord = { ...old, key: generateKey(), keyUpdatedAt: new Date().toISOString() };
    const ok = await guard(this.redis.eval(SET_IF_EXISTS, 1, this.keys.services, name, JSON.stringify(rec)));
    if (ok !== 1) throw new DevstreamsError('ERR_NOT_FOUND', `service ${name} does not exist`);
    this.services.set(name, rec);
    await this.publish('p');
    return rec;
  }

  getDevice(deviceId: string): DeviceRecord | undefined {
    return this.devices.get(deviceId);
  }

  listDevices(): DeviceRecord[] {
    return [...this.devices.values()].sort((a, b) => (a.deviceId < b.deviceId ? -1 : 1));
  }

  get endpoint(): HubEndpoint | undefined {
    return this.endpointValue;
  }

  async setEndpoint(endpoint: HubEndpoint): Promise<void> {
    await guard(this.redis.set(this.keys.endpoint, JSON.stringify(endpoint)));
    this.endpointValue = endpoint;
  }

  async addDevice(deviceId: string, key?: string): Promise<DeviceRecord> {
    if (!isValidDeviceId(deviceId)) throw new DevstreamsError('ERR_BAD_REQUEST', `invalid device id "${deviceId.slice(0, 40)}"`);
    const now = new Date().toISOString();
    const rec: DeviceRecord = { deviceId, key: key ?? generateKey(), createdAt: now, keyUpdatedAt: now };
    const added = await guard(this.redis.hsetnx(this.keys.devices, deviceId, JSON.stringify(rec)));
    if (added === 0) throw new DevstreamsError('ERR_DEVICE_EXISTS', `device ${deviceId} already exists`);
    this.devices.set(deviceId, rec);
    await this.publish(`d:${deviceId}`);
    return rec;
  }

  async addDevices(deviceIds: readonly string[]): Promise<DeviceRecord[]> {
    for (const id of deviceIds)
      if (!isValidDeviceId(id)) throw new DevstreamsError('ERR_BAD_REQUEST', `invalid device id "${id.slice(0, 40)}"`);
    if (deviceIds.length === 0) return [];
    const existing = await guard(this.redis.hmget(this.keys.devices, ...deviceIds));
    const dup = existing.findIndex((v) => v !== null);
    if (dup >= 0) throw new DevstreamsError('ERR_DEVICE_EXISTS', `device ${deviceIds[dup]} already exists`);
    const now = new Date().toISOString();
    const recs = deviceIds.map((deviceId) => ({ deviceId, key: generateKey(), createdAt: now, keyUpdatedAt: now }));
    const fields: Record<string, string> = {};
    for (const r of recs) fields[r.deviceId] = JSON.stringify(r);
    await guard(this.redis.hset(this.keys.devices, fields));
    for (const r of recs) this.devices.set(r.deviceId, r);
    await this.publish('*');
    return recs;
  }

  async removeDevice(deviceId: string): Promise<void> {
    const n = await guard(this.redis.hdel(this.keys.devices, deviceId));
    this.devices.delete(deviceId);
    if (n === 0) throw new DevstreamsError('ERR_DEVICE_NOT_FOUND', `device ${deviceId} is not registered`);
    await this.publish(`d:${deviceId}`);
  }

  async rotateDeviceKey(deviceId: string): Promise<DeviceRecord> {
    const old = parseRecord(await guard(this.redis.hget(this.keys.devices, deviceId)));
    if (!old) throw new DevstreamsError('ERR_DEVICE_NOT_FOUND', `device ${deviceId} is not registered`);
    const rec: DeviceRecord = { ...old, key: generateKey(), keyUpdatedAt: new Date().toISOString() };
    const ok = await guard(this.redis.eval(SET_IF_EXISTS, 1, this.keys.devices, deviceId, JSON.stringify(rec)));
    if (ok !== 1) throw new DevstreamsError('ERR_DEVICE_NOT_FOUND', `device ${deviceId} is not registered`);
    this.devices.set(deviceId, rec);
    await this.publish(`d:${deviceId}`);
    return rec;
  }

  async rotatePolicyKey(policy: 'service' | 'owner'): Promise<string> {
    const key = generateKey();
    await guard(this.redis.hset(this.keys.policies, policy, key));
    this.policies[policy] = key;
    await this.publish('p');
    return key;
  }
}
