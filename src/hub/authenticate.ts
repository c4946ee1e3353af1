/**
 * Checks the SAS token of a request against the registry: a device token for the device's own
 * control socket, a `service` (or `owner`, or a named service identity's) token for stream
 * requests, an `owner` token for the registry API. Scope is checked before the signature, so a token for another resource or
 * policy fails as `ERR_AUTH_SCOPE` without touching any key.
 *
 * An address past its refused credentials (admission.ts) still has its tokens checked against
 * the local copy of the registry, which is one HMAC: a valid token is never turned away because
 * others behind the same address (a NAT, a reverse proxy) forged theirs. Only the expensive part
 * of a refusal, the registry re-read (a file read, or Redis), is skipped: such a request that
 * fails the local check gets 429 instead.
 */
import type { IncomingMessage } from 'node:http';
import { DevstreamsError } from '../errors.js';
import { deviceResource, hubResource, parseSasToken, verifySasToken, type SasToken } from '../auth/sas.js';
import type { RegistryStore } from './registry-store.js';
import type { ServiceLimits } from './registry.js';

/**
 * What a verified token lets its holder do. A policy principal is `owner`, the shared `service`
 * policy, or a named service identity (role service, with limits of its own).
 */
export type Principal =
  | { kind: 'device'; deviceId: string; expiry: number; key: string }
  | { kind: 'policy'; policy: string; role: 'service' | 'owner'; limits?: ServiceLimits };

/** Requests from an address past its refused credentials, with the error that refuses them. */
const limitedRequests = new WeakMap<IncomingMessage, () => DevstreamsError>();

/** Marks `req` as coming from an address past its limit: `refuse` makes its 429 if the cheap check fails. */
export function markAddressLimited(req: IncomingMessage, refuse: () => DevstreamsError): void {
  limitedRequests.set(req, refuse);
}

function headerToken(req: IncomingMessage): string {
  const value = req.headers.authorization;
  if (value === undefined || value === '')
    throw new DevstreamsError('ERR_AUTH_MISSING', 'Authorization header with a SharedAccessSignature is required');
  return value;
}

/** Verifies a device token for `deviceId`. */
export async function authenticateDevice(
  req: IncomingMessage,
  registry: RegistryStore,
  hostName: string,
  deviceId: string,
  skew: number,
): Promise<Extract<Principal, { kind: 'device' }>> {
  const token = parseSasToken(headerToken(req));
  if (token.keyName !== undefined || token.resource.toLowerCase() !== deviceResource(hostName, deviceId).toLowerCase()) {
    throw new DevstreamsError('ERR_AUTH_SCOPE', `token is not scoped to device ${deviceId} on ${hostName}`);
  }
  const key = await withFreshRegistry(registry, () => registry.getDevice(deviceId)?.key, token, skew, limitedRequests.get(req), deviceId);
  return { kind: 'device', deviceId, expiry: token.expiry, key };
}

/** Verifies a policy token; `allowed` lists the policies that may call this endpoint. */
export async function authenticatePolicy(
  req: IncomingMessage,
  registry: RegistryStore,
  hostName: string,
  allowed: readonly ('service' | 'owner')[],
  skew: number,
): Promise<Principal> {
  const token = parseSasToken(headerToken(req));
  const policy = token.keyName;
  if (policy === undefined || token.resource.toLowerCase() !== hubResource(hostName)) {
    throw new DevstreamsError('ERR_AUTH_SCOPE', `token is not a policy token scoped to ${hostName}`);
  }
  const role = policy === 'owner' ? 'owner' : 'service';
  if (!allowed.includes(role)) throw new DevstreamsError('ERR_AUTH_SCOPE', `policy ${policy.slice(0, 64)} may not call this endpoint`);
  // An unknown name looks like a wrong key (after a re-read: it may have been added a moment ago).
  await withFreshRegistry(registry, () => registry.policyKey(policy), token, skew, limitedRequests.get(req));
  const rec = policy === 'service' || policy === 'owner' ? undefined : registry.getService(policy);
  if (!rec) return { kind: 'policy', policy, role };
  const limits: ServiceLimits = {};
  if (rec.maxPending !== undefined) limits.maxPending = rec.maxPending;
  if (rec.ratePerSecond !== undefined) limits.ratePerSecond = rec.ratePerSecond;
  return { kind: 'policy', policy, role, limits };
}

/**
 * Verifies `token` with the key `lookup` finds. When that fails, the registry is re-read
 * (unthrottled) and the check repeated once, so a device added or a key rotated a moment ago
 * by another process is never refused because of a stale copy. Returns the key that matched.
 * With `limited` (the address is past its refused credentials) nothing is re-read: the local
 * copy decides, and a token it does not verify gets `limited()`'s error (429).
 */
async function withFreshRegistry(
  registry: RegistryStore,
  lookup: () => string | undefined,
  token: SasToken,
  skew: number,
  limited: (() => DevstreamsError) | undefined,
  deviceId?: string,
): Promise<string> {
  // A store that cannot be reached (Redis down) leaves the local copy as it is: the token is
  // checked against it, and a bad one is still a 401, never a 503 about the store.
  if (!limited) await registry.refresh().catch(() => {});
  const check = (): string => {
    const key = lookup();
    // An unknown device and a wrong key look the same from outside.
    if (key === undefined) throw new DevstreamsError('ERR_AUTH_INVALID', 'shared access signature does not match');
    verifySasToken(token, key, { clockSkewSeconds: skew });
    return key;
  };
  try {
    return check();
  } catch (err) {
    if (!(err instanceof DevstreamsError) || err.code !== 'ERR_AUTH_INVALID') throw err;
    if (limited) throw limited();
    try {
      await registry.refresh(true, deviceId);
    } catch {
      throw err;
    }
    return check();
  }
}

/** The bearer token of a streaming-endpoint request, decoded from base64url. */
export function bearerToken(req: IncomingMessage): Buffer {
  const value = req.headers.authorization;
  if (value === undefined || value === '')
    throw new DevstreamsError('ERR_AUTH_MISSING', 'Authorization: Bearer <stream token> is required');
  const m = /^Bearer ([A-Za-z0-9_-]{16,128})$/.exec(value);
  if (!m) throw new DevstreamsError('ERR_AUTH_INVALID', 'malformed bearer token');
  return Buffer.from(m[1]!, 'base64url');
}
