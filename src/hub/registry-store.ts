/**
 * What the hub and the CLI need from a device registry, whatever holds it: a JSON file in a
 * data directory (`DeviceRegistry`, one node) or Redis (`RedisRegistry`, a fleet). Reads are
 * synchronous from a local copy kept current by the store; writes may be asynchronous.
 */
import type { DeviceRecord, HubEndpoint, ServiceLimits, ServiceRecord } from './registry.js';

/** The device registry as the hub sees it, whether a file (one node) or Redis (a fleet): reads from a local copy, writes through. */
export interface RegistryStore {
  /**
   * Brings the local copy up to date. Without `force` it may do nothing (the store keeps
   * itself current); with `force` it re-reads the policy keys and, when given, `deviceId`'s
   * record. Callers force a refresh before refusing a credential.
   */
  refresh(force?: boolean, deviceId?: string): Promise<void>;
  /** Starts applying changes made elsewhere as they happen; returns a function that stops. */
  watch(): () => void;
  /** Called after a change made elsewhere was applied to the local copy. */
  onExternalChange: (() => void) | undefined;
  /** Key of `service`, `owner`, or a service identity's name. */
  policyKey(policy: string): string | undefined;
  getService(name: string): ServiceRecord | undefined;
  listServices(): ServiceRecord[];
  addService(name: string, limits?: ServiceLimits): ServiceRecord | Promise<ServiceRecord>;
  removeService(name: string): void | Promise<void>;
  rotateServiceKey(name: string): ServiceRecord | Promise<ServiceRecord>;
  getDevice(deviceId: string): DeviceRecord | undefined;
  listDevices(): DeviceRecord[];
  readonly endpoint: HubEndpoint | undefined;
  setEndpoint(endpoint: HubEndpoint): void | Promise<void>;
  addDevice(deviceId: string, key?: string): DeviceRecord | Promise<DeviceRecord>;
  addDevices(deviceIds: readonly string[]): DeviceRecord[] | Promise<DeviceRecord[]>;
  removeDevice(deviceId: string): void | Promise<void>;
  rotateDeviceKey(deviceId: string): DeviceRecord | Promise<DeviceRecord>;
  rotatePolicyKey(policy: 'service' | 'owner'): string | Promise<string>;
}
