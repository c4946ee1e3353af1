/**
 * The device registry: device ids and keys, and the service and owner policy keys, in one JSON
 * file under the data directory. Writes are atomic (temp file + rename) and the file is readable
 * by its owner only (0600). Any process may change the file (the CLI while the hub runs): the
 * hub calls `refresh()` before each authentication, which re-reads the file when its inode,
 * size or mtime changed, so a change takes effect at once. Concurrent writers are not locked
 * against each other: last rename wins (the CLI and the hub API rarely write at the same moment).
 */
import { randomBytes } from 'node:crypto';
import {
  promises as fsp,
  watch,
  type FSWatcher,
  statSync,
  readFileSync,
  mkdirSync,
  writeFileSync,
  renameSync,
  chmodSync,
  existsSync,
} from 'node:fs';
import { join } from 'node:path';
import { DevstreamsError } from '../errors.js';
import { isValidDeviceId, isValidServiceName, type HubTransport } from '../auth/connection-string.js';
import type { RegistryStore } from './registry-store.js';

/** Registry file name inside the data directory. */
export const REGISTRY_FILE = 'registry.json';
/** With a directory watcher running, the per-authentication stat runs at most this often (ms). */
export const WATCHED_STAT_INTERVAL_MS = 200;
/** Bytes of a generated shared access key. */
export const KEY_BYTES = 32;

/** A registered device as the registry stores it, with its shared access key. */
export interface DeviceRecord {
  deviceId: string;
  /** Base64 shared access key. */
  key: string;
  createdAt: string;
  /** When the key last changed. */
  keyUpdatedAt: string;
}

/** Limits of one service identity; absent fields take the hub's defaults. */
export interface ServiceLimits {
  /** Stream requests it may have waiting for device answers at once (default: the hub's maxPendingPerService). */
  maxPending?: number;
  /** Stream requests per second (token bucket, burst the same); default: only the hub-wide rate applies. */
  ratePerSecond?: number;
}

/** A named service identity: its own key and limits, revocable on its own. */
export interface ServiceRecord extends ServiceLimits {
  name: string;
  /** Base64 shared access key. */
  key: string;
  createdAt: string;
  keyUpdatedAt: string;
}

/** Checks limits given on the CLI or the API. */
export function checkServiceLimits(l: ServiceLimits): void {
  for (const [k, v] of Object.entries(l)) {
    if (v !== undefined && (!Number.isSafeInteger(v) || (v as number) < 1))
      throw new DevstreamsError('ERR_BAD_REQUEST', `service limit ${k} must be a positive integer`);
  }
}

/** Where clients reach the hub, written by the hub at start so the CLI can print working strings. */
export interface HubEndpoint {
  hostName: string;
  transport: HubTransport;
  gatewayHostName?: string;
}

interface RegistryFile {
  version: 1;
  policies: { service: string; owner: string };
  endpoint?: HubEndpoint;
  devices: Record<string, DeviceRecord>;
  /** Named service identities (absent in files written before they existed). */
  services?: Record<string, ServiceRecord>;
}

/** Makes a new random base64 key. */
export function generateKey(): string {
  return randomBytes(KEY_BYTES).toString('base64');
}

function emptyFile(): RegistryFile {
  return { version: 1, policies: { service: generateKey(), owner: generateKey() }, devices: {} };
}

function regError(message: string, cause?: unknown): DevstreamsError {
  return new DevstreamsError('ERR_REGISTRY', message, cause === undefined ? undefined : { cause });
}

/** File-backed registry; one instance per process and data directory. */
export class DeviceRegistry implements RegistryStore {
  readonly path: string;
  private data: RegistryFile;
  private stamp = '';
  /**
   * Bumped by every synchronous load and write. An asynchronous refresh that read the file before
   * one of them and finished after it holds something older than this process does, and applying
   * it would bring back a device just removed or a key just rotated (until the next refresh).
   */
  private generation = 0;
  /** The refresh running or last run (refreshes run one after another). */
  private refreshing: Promise<void> = Promise.resolve();
  private watching = false;
  private lastStat = 0;
  /** Called after the file was re-read because someone else changed it. */
  onExternalChange: (() => void) | undefined;

  private constructor(readonly dataDir: string) {
    this.path = join(dataDir, REGISTRY_FILE);
    this.data = emptyFile();
  }

  /** Opens (creating when absent) the registry in `dataDir`. */
  static open(dataDir: string): DeviceRegistry {
    const r = new DeviceRegistry(dataDir);
    try {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    } catch (err) {
      throw regError(`cannot create data directory ${dataDir}: ${(err as Error).message}`, err);
    }
    if (existsSync(r.path)) r.loadSync();
    else r.writeSync();
    return r;
  }

  private static stampOf(st: { ino: number; size: number; mtimeMs: number }): string {
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  }

  private loadSync(): void {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
      this.stamp = DeviceRegistry.stampOf(statSync(this.path));
      this.generation++;
    } catch (err) {
      throw regError(`cannot read registry ${this.path}: ${(err as Error).message}`, err);
    }
    this.data = DeviceRegistry.parse(text, this.path);
  }

  private static parse(text: string, path: string): RegistryFile {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw regError(`registry ${path} is not valid JSON`, err);
    }
    const f = parsed as Partial<RegistryFile>;
    if (
      f === null ||
      typeof f !== 'object' ||
      f.version !== 1 ||
      typeof f.policies?.service !== 'string' ||
      typeof f.policies?.owner !== 'string' ||
      typeof f.devices !== 'object' ||
      f.devices === null
    ) {
      throw regError(`registry ${path} has an unknown layout`);
    }
    return f as RegistryFile;
  }

  private writeSync(): void {
    const tmp = `${this.path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      writeFileSync(tmp, `${JSON.stringify(this.data, null, 2)}\n`, { mode: 0o600 });
      chmodSync(tmp, 0o600);
      renameSync(tmp, this.path);
      this.stamp = DeviceRegistry.stampOf(statSync(this.path));
      this.generation++;
    } catch (err) {
      throw regError(`cannot write registry ${this.path}: ${(err as Error).message}`, err);
    }
  }

  /**
   * Re-reads the file if another process changed it. Cheap when nothing changed (one stat).
   * `force` skips the throttle: callers use it before refusing credentials.
   */
  refresh(force = false, _deviceId?: string): Promise<void> {
    // One at a time: two reads in flight could finish out of order, the older applied last.
    const run = this.refreshing.then(() => this.refreshOnce(force));
    // A refresh that failed (its change listener threw) fails its caller, not every later one.
    this.refreshing = run.catch(() => undefined);
    return run;
  }

  private async refreshOnce(force: boolean): Promise<void> {
    // While the directory watcher runs it applies changes at once; the stat is then only a
    // fallback for missed events and runs at most every WATCHED_STAT_INTERVAL_MS.
    if (this.watching && !force) {
      const now = performance.now();
      if (now - this.lastStat < WATCHED_STAT_INTERVAL_MS) return;
      this.lastStat = now;
    }
    const generation = this.generation;
    let st: Awaited<ReturnType<typeof fsp.stat>>;
    try {
      st = await fsp.stat(this.path);
    } catch {
      return; // file gone for a moment (mid-rename elsewhere): keep what we have
    }
    const stamp = DeviceRegistry.stampOf(st);
    if (stamp === this.stamp) return;
    try {
      const text = await fsp.readFile(this.path, 'utf8');
      // This process loaded or wrote the file meanwhile: what it holds is newer than this read
      // (and has its stamp).
      if (this.generation !== generation) return;
      this.data = DeviceRegistry.parse(text, this.path);
      this.stamp = stamp;
    } catch {
      return; // a torn or foreign file: keep the last good copy
    }
    this.onExternalChange?.();
  }

  /**
   * Watches the data directory and refreshes when the registry file is replaced, so that a
   * removal or key rotation closes live sockets at once, not at their next authentication.
   * Returns a function that stops watching.
   */
  watch(): () => void {
    let watcher: FSWatcher | undefined;
    let pending: NodeJS.Timeout | undefined;
    try {
      watcher = watch(this.dataDir, { persistent: false }, (_event, name) => {
        if (name !== null && name !== REGISTRY_FILE) return;
        if (pending) return;
        // Coalesce the burst of events one rename makes.
        pending = setTimeout(() => {
          pending = undefined;
          void this.refresh(true);
        }, 20);
        pending.unref();
      });
      watcher.on('error', () => {
        this.watching = false;
      });
      this.watching = true;
    } catch {
      // No watch support: refresh before each authentication still applies changes.
    }
    return () => {
      this.watching = false;
      if (pending) clearTimeout(pending);
      watcher?.close();
    };
  }

  /** Synchronous refresh, for the CLI before a read-modify-write. */
  refreshSync(): void {
    if (existsSync(this.path)) this.loadSync();
  }

  get serviceKey(): string {
    return this.data.policies.service;
  }

  get ownerKey(): string {
    return this.data.policies.owner;
  }

  /** Key of `policy` (service, owner, or a service identity's name), or undefined for an unknown name. */
  policyKey(policy: string): string | undefined {
    if (policy === 'service') return this.data.policies.service;
    if (policy === 'owner') return this.data.policies.owner;
    return this.getService(policy)?.key;
  }

  getService(name: string): ServiceRecord | undefined {
    const services = this.data.services ?? {};
    return Object.hasOwn(services, name) ? services[name] : undefined;
  }

  listServices(): ServiceRecord[] {
    return Object.values(this.data.services ?? {}).sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  /** Adds a service identity with a fresh key; `ERR_DEVICE_EXISTS` when the name is taken. */
  addService(name: string, limits: ServiceLimits = {}): ServiceRecord {
    if (!isValidServiceName(name))
      throw new DevstreamsError(
        'ERR_BAD_REQUEST',
        `invalid service name "${name.slice(0, 40)}" (1-64 of A-Z a-z 0-9 . _ -; not service or owner)`,
      );
    checkServiceLimits(limits);
    this.refreshSync();
    if (this.getService(name)) throw new DevstreamsError('ERR_DEVICE_EXISTS', `service ${name} already exists`);
    const now = new Date().toISOString();
    const rec: ServiceRecord = { name, key: generateKey(), createdAt: now, keyUpdatedAt: now, ...limits };
    this.data.services = { ...(this.data.services ?? {}), [name]: rec };
    this.writeSync();
    return rec;
  }

  /** Revokes a service identity: its tokens stop working at once. */
  removeService(name: string): void {
    this.refreshSync();
    if (!this.getService(name)) throw new DevstreamsError('ERR_NOT_FOUND', `service ${name} does not exist`);
    delete this.data.services![name];
    this.writeSync();
  }

  /** Gives a service identity a new key; the old one stops working at once. */
  rotateServiceKey(name: string): ServiceRecord {
    this.refreshSync();
    const rec = this.getService(name);
    if (!rec) throw new DevstreamsError('ERR_NOT_FOUND', `service ${name} does not exist`);
    rec.key = generateKey();
    rec.keyUpdatedAt = new Date().toISOString();
    this.writeSync();
    return rec;
  }

  get endpoint(): HubEndpoint | undefined {
    return this.data.endpoint;
  }

  setEndpoint(endpoint: HubEndpoint): void {
    this.refreshSync();
    this.data.endpoint = endpoint;
    this.writeSync();
  }

  getDevice(deviceId: string): DeviceRecord | undefined {
    return Object.hasOwn(this.data.devices, deviceId) ? this.data.devices[deviceId] : undefined;
  }

  listDevices(): DeviceRecord[] {
    return Object.values(this.data.devices).sort((a, b) => (a.deviceId < b.deviceId ? -1 : 1));
  }

  /** Adds a device with a fresh key (or the given one); `ERR_DEVICE_EXISTS` when present. */
  addDevice(deviceId: string, key?: string): DeviceRecord {
    if (!isValidDeviceId(deviceId)) throw new DevstreamsError('ERR_BAD_REQUEST', `invalid device id "${deviceId.slice(0, 40)}"`);
    this.refreshSync();
    if (this.getDevice(deviceId)) throw new DevstreamsError('ERR_DEVICE_EXISTS', `device ${deviceId} already exists`);
    const now = new Date().toISOString();
    const rec: DeviceRecord = { deviceId, key: key ?? generateKey(), createdAt: now, keyUpdatedAt: now };
    this.data.devices[deviceId] = rec;
    this.writeSync();
    return rec;
  }

  /** Adds many devices with fresh keys in one write (fleet provisioning, benchmarks). */
  addDevices(deviceIds: readonly string[]): DeviceRecord[] {
    this.refreshSync();
    const now = new Date().toISOString();
    const out: DeviceRecord[] = [];
    for (const deviceId of deviceIds) {
      if (!isValidDeviceId(deviceId)) throw new DevstreamsError('ERR_BAD_REQUEST', `invalid device id "${deviceId.slice(0, 40)}"`);
      if (this.getDevice(deviceId)) throw new DevstreamsError('ERR_DEVICE_EXISTS', `device ${deviceId} already exists`);
      const rec: DeviceRecord = { deviceId, key: generateKey(), createdAt: now, keyUpdatedAt: now };
      this.data.devices[deviceId] = rec;
      out.push(rec);
    }
    this.writeSync();
    return out;
  }

  /** Removes a device; `ERR_DEVICE_NOT_FOUND` when absent. */
  removeDevice(deviceId: string): void {
    this.refreshSync();
    if (!this.getDevice(deviceId)) throw new DevstreamsError('ERR_DEVICE_NOT_FOUND', `device ${deviceId} is not registered`);
    delete this.data.devices[deviceId];
    this.writeSync();
  }

  /** Gives a device a new key; the old key stops working at once. */
  rotateDeviceKey(deviceId: string): DeviceRecord {
    this.refreshSync();
    const rec = this.getDevice(deviceId);
    if (!rec) throw new DevstreamsError('ERR_DEVICE_NOT_FOUND', `device ${deviceId} is not registered`);
    rec.key = generateKey();
    rec.keyUpdatedAt = new Date().toISOString();
    this.writeSync();
    return rec;
  }

  /** Gives a policy a new key. */
  rotatePolicyKey(policy: 'service' | 'owner'): string {
    this.refreshSync();
    this.data.policies[policy] = generateKey();
    this.writeSync();
    return this.data.policies[policy];
  }
}
