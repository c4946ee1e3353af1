/**
 * IoT-Hub-style connection strings: parse and format the `Key=value;Key=value` strings that
 * carry a hub address and a shared access key. Device, service and owner strings share one
 * grammar; `parseConnectionString` tells them apart and names the bad field when one is wrong.
 *
 * Fields:
 * - `HostName=<host[:port]>`       the hub's name; tokens are scoped to it (required)
 * - `DeviceId=<id>`                 a device string (exclusive with SharedAccessKeyName)
 * - `SharedAccessKeyName=<policy>`  a policy string: `service`, `owner`, or a named service identity
 * - `SharedAccessKey=<base64>`      the key (required)
 * - `GatewayHostName=<host:port>[,<host:port>...]`   where to connect instead of HostName (tokens
 *   stay scoped to HostName); a list names several hub nodes of a fleet, tried in turn
 * - `Transport=ws|wss`              `ws` when the hub serves plain WebSocket/HTTP; absent means `wss` (TLS)
 * - `HubCertSha256=<64 hex digits>`  trust the hub's TLS certificate by its SHA-256 fingerprint
 *   (a self-signed hub) instead of by a CA; colons and upper case are accepted (as openssl prints it)
 */
import { DevstreamsError } from '../errors.js';

/**
 * Policy names a non-device string may carry: the shared `service` and `owner` policies, or the
 * name of a service identity (one per operator or tool, with limits of its own).
 */
export type PolicyName = string;

/** Names of service identities: 1-64 of a-z A-Z 0-9 . _ -, starting with a letter or digit; not `service` or `owner`. */
export const SERVICE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** True when `name` can name a service identity. */
export function isValidServiceName(name: string): boolean {
  return SERVICE_NAME_PATTERN.test(name) && name !== 'service' && name !== 'owner';
}

/** The scheme a client uses to reach the hub. */
export type HubTransport = 'ws' | 'wss';

interface CommonFields {
  /** Hub name tokens are scoped to, `host` or `host:port`. */
  hostName: string;
  /** Where to connect when it differs from `hostName`. */
  gatewayHostName?: string;
  /** `ws` for a plain hub, `wss` (the default) for TLS. */
  transport: HubTransport;
  /** Base64 shared access key. */
  sharedAccessKey: string;
  /** SHA-256 of the hub's TLS certificate (DER), 64 lower-case hex digits: trust it by this pin instead of a CA. */
  hubCertSha256?: string;
}

/** A device's own connection string: its id and shared access key (`DeviceId=`). */
export interface DeviceConnectionString extends CommonFields {
  kind: 'device';
  deviceId: string;
}

/** A policy connection string (`SharedAccessKeyName=`): `service`, `owner` or a named service identity. */
export interface PolicyConnectionString extends CommonFields {
  kind: 'policy';
  policy: PolicyName;
}

/** Either kind, as `parseConnectionString` returns it. */
export type ConnectionString = DeviceConnectionString | PolicyConnectionString;

/** Device ids: letters, digits and `._:@-`, 1 to 128 characters, starting with a letter or digit. */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;

const HOST_PATTERN = /^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$/;
const BASE64_PATTERN = /^[A-Za-z0-9+/]+={0,2}$/;
const KNOWN = new Set(['HostName', 'DeviceId', 'SharedAccessKeyName', 'SharedAccessKey', 'GatewayHostName', 'Transport', 'HubCertSha256']);

function bad(message: string): DevstreamsError {
  return new DevstreamsError('ERR_CONNECTION_STRING', message);
}

/** True when `id` is a valid device id. */
export function isValidDeviceId(id: string): boolean {
  return DEVICE_ID_PATTERN.test(id);
}

/** Parses any connection string; throws `ERR_CONNECTION_STRING` naming the bad field. */
export function parseConnectionString(text: string): ConnectionString {
  if (typeof text !== 'string' || text.trim() === '') throw bad('connection string is empty');
  const fields = new Map<string, string>();
  for (const raw of text.trim().split(';')) {
    if (raw === '') continue;
    const eq = raw.indexOf('=');
    if (eq <= 0) throw bad(`connection string part "${raw.slice(0, 40)}" is not Key=value`);
    const key = raw.slice(0, eq).trim();
    const value = raw.slice(eq + 1).trim();
    if (!KNOWN.has(key)) throw bad(`connection string has unknown field ${key}`);
    if (fields.has(key)) throw bad(`connection string repeats field ${key}`);
    if (value === '') throw bad(`connection string field ${key} is empty`);
    fields.set(key, value);
  }
  const hostName = fields.get('HostName');
  if (hostName === undefined) throw bad('connection string lacks HostName');
  if (!HOST_PATTERN.test(hostName)) throw bad(`connection string field HostName "${hostName}" is not host[:port]`);
  const gatewayHostName = fields.get('GatewayHostName');
  if (gatewayHostName !== undefined && !gatewayHostName.split(',').every((h) => HOST_PATTERN.test(h))) {
    throw bad(`connection string field GatewayHostName "${gatewayHostName}" is not host[:port] or a comma-separated list of them`);
  }
  const key = fields.get('SharedAccessKey');
  if (key === undefined) throw bad('connection string lacks SharedAccessKey');
  if (!BASE64_PATTERN.test(key) || Buffer.from(key, 'base64').length < 16) {
    throw bad('connection string field SharedAccessKey is not base64 of at least 16 bytes');
  }
  const transportText = fields.get('Transport') ?? 'wss';
  if (transportText !== 'ws' && transportText !== 'wss')
    throw bad(`connection string field Transport must be ws or wss, not "${transportText}"`);
  const common: CommonFields = { hostName, transport: transportText, sharedAccessKey: key };
  if (gatewayHostName !== undefined) common.gatewayHostName = gatewayHostName;
  const pin = fields.get('HubCertSha256');
  if (pin !== undefined) {
    const hex = normalizeSha256(pin);
    if (hex === undefined) throw bad('connection string field HubCertSha256 is not a SHA-256 fingerprint (64 hex digits, colons allowed)');
    if (transportText === 'ws') throw bad('connection string field HubCertSha256 needs TLS: it cannot go with Transport=ws');
    common.hubCertSha256 = hex;
  }
  const deviceId = fields.get('DeviceId');
  const policy = fields.get('SharedAccessKeyName');
  if (deviceId !== undefined && policy !== undefined) throw bad('connection string has both DeviceId and SharedAccessKeyName');
  if (deviceId !== undefined) {
    if (!isValidDeviceId(deviceId)) throw bad(`connection string field DeviceId "${deviceId.slice(0, 40)}" is not a valid device id`);
    return { kind: 'device', deviceId, ...common };
  }
  if (policy === undefined) throw bad('connection string lacks DeviceId or SharedAccessKeyName');
  if (policy !== 'service' && policy !== 'owner' && !isValidServiceName(policy))
    throw bad(`connection string field SharedAccessKeyName must be service, owner or a service name, not "${policy.slice(0, 70)}"`);
  return { kind: 'policy', policy, ...common };
}

/** Parses a string that must be a device string. */
export function parseDeviceConnectionString(text: string): DeviceConnectionString {
  const cs = parseConnectionString(text);
  if (cs.kind !== 'device') throw bad('expected a device connection string (with DeviceId)');
  return cs;
}

/** Parses a string that must be a policy string (`service` or `owner`). */
export function parsePolicyConnectionString(text: string): PolicyConnectionString {
  const cs = parseConnectionString(text);
  if (cs.kind !== 'policy') throw bad('expected a service or owner connection string (with SharedAccessKeyName)');
  return cs;
}

/** Formats a connection string in the canonical field order. */
export function formatConnectionString(cs: ConnectionString): string {
  const parts = [`HostName=${cs.hostName}`];
  if (cs.kind === 'device') parts.push(`DeviceId=${cs.deviceId}`);
  else parts.push(`SharedAccessKeyName=${cs.policy}`);
  parts.push(`SharedAccessKey=${cs.sharedAccessKey}`);
  if (cs.gatewayHostName !== undefined) parts.push(`GatewayHostName=${cs.gatewayHostName}`);
  if (cs.transport === 'ws') parts.push('Transport=ws');
  if (cs.hubCertSha256 !== undefined) parts.push(`HubCertSha256=${cs.hubCertSha256}`);
  return parts.join(';');
}

/** A SHA-256 fingerprint as 64 lower-case hex digits (colons and case as openssl prints them accepted), or undefined when it is not one. */
export function normalizeSha256(text: string): string | undefined {
  const hex = text.replace(/:/g, '').toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? hex : undefined;
}

/** The `host[:port]`s a client may dial, in order: the gateways when given, else HostName. */
export function dialHosts(cs: ConnectionString): string[] {
  return cs.gatewayHostName !== undefined ? cs.gatewayHostName.split(',') : [cs.hostName];
}

/** `host[:port]` a client should dial: the first gateway when given, else HostName. */
export function dialHost(cs: ConnectionString): string {
  return dialHosts(cs)[0]!;
}

/** Base URL (`https://host` or `http://host`) for HTTP calls to the hub. */
export function httpBaseUrl(cs: ConnectionString): string {
  return `${cs.transport === 'ws' ? 'http' : 'https'}://${dialHost(cs)}`;
}

/** Base URL (`wss://host` or `ws://host`) for WebSocket calls to the hub. */
export function wsBaseUrl(cs: ConnectionString): string {
  return `${cs.transport}://${dialHost(cs)}`;
}
