/**
 * Shared access signature tokens, IoT Hub style:
 * `SharedAccessSignature sr=<url-encoded resource>&sig=<url-encoded base64 HMAC-SHA256(key, sr + "\n" + se)>&se=<unix seconds>[&skn=<policy>]`.
 * The signed string uses the url-encoded resource, as IoT Hub does. Verification compares
 * signatures in constant time and allows a small clock skew on expiry.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { DevstreamsError } from '../errors.js';

/** Default token lifetime clients ask for, in seconds. */
export const DEFAULT_TOKEN_TTL_SECONDS = 3600;
/** Clock skew tolerated when checking expiry, in seconds. */
export const DEFAULT_CLOCK_SKEW_SECONDS = 30;
/** Longest token lifetime a hub accepts (guards against tokens that never expire), in seconds. */
export const MAX_TOKEN_TTL_SECONDS = 366 * 24 * 3600;

const PREFIX = 'SharedAccessSignature ';

/** A parsed (not yet verified) token. */
export interface SasToken {
  /** The resource, decoded (`host` or `host/devices/id`). */
  resource: string;
  /** The signature bytes. */
  signature: Buffer;
  /** Expiry, unix seconds. */
  expiry: number;
  /** Policy name, absent for device tokens. */
  keyName?: string;
}

/** Resource a device token is scoped to. */
export function deviceResource(hostName: string, deviceId: string): string {
  return `${hostName.toLowerCase()}/devices/${deviceId}`;
}

/** Resource a service or owner token is scoped to. */
export function hubResource(hostName: string): string {
  return hostName.toLowerCase();
}

function sign(keyBase64: string, encodedResource: string, expiry: number): Buffer {
  return createHmac('sha256', Buffer.from(keyBase64, 'base64')).update(`${encodedResource}\n${expiry}`).digest();
}

/** Creates a token for `resource`, valid until `expiry` (unix seconds). */
export function createSasToken(resource: string, keyBase64: string, expiry: number, keyName?: string): string {
  const sr = encodeURIComponent(resource);
  const sig = encodeURIComponent(sign(keyBase64, sr, expiry).toString('base64'));
  return `${PREFIX}sr=${sr}&sig=${sig}&se=${expiry}${keyName !== undefined ? `&skn=${encodeURIComponent(keyName)}` : ''}`;
}

/** Unix seconds now. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}

/** Parses a token's fields; throws `ERR_AUTH_INVALID` on anything malformed. */
export function parseSasToken(token: string): SasToken {
  const invalid = (why: string): DevstreamsError => new DevstreamsError('ERR_AUTH_INVALID', `malformed shared access signature: ${why}`);
  if (typeof token !== 'string' || !token.startsWith(PREFIX)) throw invalid('missing "SharedAccessSignature " prefix');
  if (token.length > 4096) throw invalid('too long');
  const fields = new Map<string, string>();
  for (const part of token.slice(PREFIX.length).split('&')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw invalid('a field is not key=value');
    const key = part.slice(0, eq);
    if (fields.has(key)) throw invalid(`repeated field ${key}`);
    let value: string;
    try {
      value = decodeURIComponent(part.slice(eq + 1));
    } catch {
      throw invalid(`field ${key} is not url-encoded`);
    }
    fields.set(key, value);
  }
  const resource = fields.get('sr');
  const sig = fields.get('sig');
  const se = fields.get('se');
  if (resource === undefined || resource === '') throw invalid('missing sr');
  if (sig === undefined || !/^[A-Za-z0-9+/]{43}=$/.test(sig)) throw invalid('missing or malformed sig');
  if (se === undefined || !/^[0-9]{1,12}$/.test(se)) throw invalid('missing or malformed se');
  const out: SasToken = { resource, signature: Buffer.from(sig, 'base64'), expiry: Number(se) };
  const skn = fields.get('skn');
  if (skn !== undefined) out.keyName = skn;
  return out;
}

/** The clock a token check uses: now, and how much skew to forgive. */
export interface VerifyOptions {
  /** Current time in unix seconds (tests pass their own). */
  now?: number;
  /** Tolerated skew, seconds. */
  clockSkewSeconds?: number;
}

/**
 * Checks a parsed token's signature with `keyBase64` and its expiry. Scope (resource and
 * policy) is the caller's check, made before calling this. Throws `ERR_AUTH_INVALID` or
 * `ERR_AUTH_EXPIRED`.
 */
export function verifySasToken(token: SasToken, keyBase64: string, options: VerifyOptions = {}): void {
  const expected = sign(keyBase64, encodeURIComponent(token.resource), token.expiry);
  if (token.signature.length !== expected.length || !timingSafeEqual(token.signature, expected)) {
    throw new DevstreamsError('ERR_AUTH_INVALID', 'shared access signature does not match');
  }
  const now = options.now ?? nowSeconds();
  const skew = options.clockSkewSeconds ?? DEFAULT_CLOCK_SKEW_SECONDS;
  if (token.expiry + skew < now) throw new DevstreamsError('ERR_AUTH_EXPIRED', `shared access signature expired at ${token.expiry}`);
  if (token.expiry - skew - now > MAX_TOKEN_TTL_SECONDS)
    throw new DevstreamsError('ERR_AUTH_INVALID', 'shared access signature lifetime is too long');
}

/** Creates a device token valid for `ttlSeconds`. */
export function createDeviceToken(hostName: string, deviceId: string, keyBase64: string, ttlSeconds = DEFAULT_TOKEN_TTL_SECONDS): string {
  return createSasToken(deviceResource(hostName, deviceId), keyBase64, nowSeconds() + ttlSeconds);
}

/** Creates a service/owner token valid for `ttlSeconds`. */
export function createPolicyToken(hostName: string, policy: string, keyBase64: string, ttlSeconds = DEFAULT_TOKEN_TTL_SECONDS): string {
  return createSasToken(hubResource(hostName), keyBase64, nowSeconds() + ttlSeconds, policy);
}
