/**
 * The service SDK: asks the hub for a stream to a device and opens the service side of it.
 * With an owner connection string it also manages the registry over the hub's HTTP API.
 */
import { DevstreamsError } from '../errors.js';
import { dialHost, httpBaseUrl, parsePolicyConnectionString, type PolicyConnectionString } from '../auth/connection-string.js';
import { createPolicyToken, DEFAULT_TOKEN_TTL_SECONDS } from '../auth/sas.js';
import type { WebSocketClientTransport } from '../transport/index.js';
import { HubHttp, errorFromBody } from './http.js';
import { openStreamTransport } from './stream-transport.js';
import { expectKey } from '../crypto/index.js';
import {
  STREAM_NAME_PLAIN,
  STREAM_NAME_RESUMABLE,
  STREAM_NAME_SEALED,
  resumeConfigOf,
  resumeStreamName,
  secureLink,
  startDeviceSession,
  type DeviceSession,
  type EndToEndOptions,
} from './device-session.js';
import { keepResumed } from '../resume/index.js';

/** The hub's default wait for a device's answer, seconds (mirrors the hub default; the SDK does not import the hub). */
export const DEFAULT_STREAM_RESPONSE_TIMEOUT_SECONDS = 60;
/** Extra time the client allows a stream request beyond the response timeout, seconds. */
export const STREAM_REQUEST_SLACK_SECONDS = 10;
/** Fraction of a token's lifetime after which the client makes a new one. */
export const TOKEN_RENEW_FRACTION = 0.8;

/** Options of a ServiceClient; every field has a default. */
export interface ServiceClientOptions {
  /** Extra trusted CA (PEM) for a hub with a self-signed certificate. */
  ca?: string | Buffer;
  /** Lifetime of the SAS tokens the client makes, seconds. */
  tokenTtlSeconds?: number;
}

/** Options of one stream request. */
export interface CreateStreamOptions {
  /** How long the hub waits for the device's answer, seconds (hub default 60). */
  responseTimeoutSeconds?: number;
  /** Every message will be a sealed record: the stream socket may skip WebSocket masking (see OpenStreamOptions.zeroMask). */
  zeroMask?: boolean;
}

/** The hub's answer to a stream request. */
export interface StreamGrant {
  isAccepted: boolean;
  streamName: string;
  streamId: string;
  url: string;
  authorizationToken: string;
  reason?: string;
  /** The device's public key as the device announced it to the hub (see `trustHub`). */
  devicePublicKey?: string;
}

/** The service side of an open device stream. */
export interface ServiceStream {
  deviceId: string;
  streamName: string;
  streamId: string;
  /** The message pipe to the device, through the hub. */
  transport: WebSocketClientTransport;
  /** The device's public key as announced to the hub, when it announced one. */
  devicePublicKey?: string;
}

/** Optional observer of a resumable session's reconnect attempts (for logs). */
export interface ResumeHooks {
  onResumeAttemptFailed?(error: Error, attempt: number): void;
}

/** A device as the registry API lists it. */
export interface DeviceInfo {
  deviceId: string;
  createdAt: string;
  keyUpdatedAt: string;
  connected: boolean;
  /** The hub node holding the device's control socket, while connected. */
  node?: string;
  /** ISO time the answering hub node last saw the device connect or disconnect (now while connected). */
  lastSeen?: string;
  /** Only for the owner policy. */
  connectionString?: string;
}

/** The service side of the hub: stream requests, device sessions, the registry API. */
export class ServiceClient {
  private readonly http: HubHttp;
  private token = '';
  private tokenRenewAt = 0;

  private constructor(
    readonly cs: PolicyConnectionString,
    private readonly o: ServiceClientOptions,
  ) {
    this.http = new HubHttp(httpBaseUrl(cs), { ca: o.ca });
  }

  /** Builds a client from a `service` or `owner` connection string. */
  static fromConnectionString(text: string, options: ServiceClientOptions = {}): ServiceClient {
    return new ServiceClient(parsePolicyConnectionString(text), options);
  }

  private authHeader(): string {
    const now = Date.now();
    if (now >= this.tokenRenewAt) {
      const ttl = this.o.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
      this.token = createPolicyToken(this.cs.hostName, this.cs.policy, this.cs.sharedAccessKey, ttl);
      this.tokenRenewAt = now + ttl * 1000 * TOKEN_RENEW_FRACTION;
    }
    return this.token;
  }

  /** Asks the hub for a stream; resolves with the grant whether accepted or not. */
  async requestStream(deviceId: string, streamName: string, o: CreateStreamOptions = {}): Promise<StreamGrant> {
    const headers: Record<string, string> = { authorization: this.authHeader() };
    if (o.responseTimeoutSeconds !== undefined) headers['iothub-streaming-response-timeout-in-seconds'] = String(o.responseTimeoutSeconds);
    // The hub may wait for the device up to the response timeout (default 60 s): allow that plus slack.
    const waitMs = ((o.responseTimeoutSeconds ?? DEFAULT_STREAM_RESPONSE_TIMEOUT_SECONDS) + STREAM_REQUEST_SLACK_SECONDS) * 1000;
    const r = await this.http.request(
      'POST',
      `/twins/${encodeURIComponent(deviceId)}/streams/${encodeURIComponent(streamName)}`,
      headers,
      undefined,
      waitMs,
    );
    if (r.status !== 200) throw errorFromBody(r.status, r.body);
    const b = r.body as Partial<StreamGrant> | undefined;
    if (!b || typeof b.isAccepted !== 'boolean' || typeof b.streamId !== 'string')
      throw new DevstreamsError('ERR_HUB_UNAVAILABLE', 'hub sent a malformed stream answer');
    return b as StreamGrant;
  }

  /**
   * Opens the service side of a stream to `deviceId`: request, then connect to the streaming
   * endpoint. Rejects with ERR_STREAM_REJECTED (the device's reason in the message),
   * ERR_DEVICE_OFFLINE, ERR_DEVICE_NOT_FOUND, ERR_STREAM_TIMEOUT, ERR_AUTH_*, ERR_RATE_LIMITED.
   */
  async createStream(deviceId: string, streamName: string, o: CreateStreamOptions = {}): Promise<ServiceStream> {
    const grant = await this.requestStream(deviceId, streamName, o);
    if (!grant.isAccepted) {
      throw new DevstreamsError(
        'ERR_STREAM_REJECTED',
        `device ${deviceId} rejected stream ${streamName}${grant.reason ? `: ${grant.reason}` : ''}`,
      );
    }
    const transport = await openStreamTransport(grant.url, grant.authorizationToken, {
      zeroMask: o.zeroMask === true,
      ca: this.o.ca,
      ...(this.cs.gatewayHostName !== undefined ? { gatewayHost: dialHost(this.cs), hostName: this.cs.hostName } : {}),
    });
    return {
      deviceId,
      streamName: grant.streamName,
      streamId: grant.streamId,
      transport,
      devicePublicKey: grant.devicePublicKey,
    };
  }

  /**
   * Opens a device stream carrying a mux session, sealed end to end unless `encrypt` is false:
   * open channels on `result.session`. Rejects like `createStream`, and with
   * ERR_HANDSHAKE_* when the device's key is not the one expected.
   */
  async connect(
    deviceId: string,
    o: EndToEndOptions & CreateStreamOptions & ResumeHooks & { trustHub?: boolean } = {},
  ): Promise<DeviceSession> {
    const sealed = o.encrypt !== false;
    const resume = resumeConfigOf(o) !== undefined;
    const name = !sealed ? STREAM_NAME_PLAIN : resume ? STREAM_NAME_RESUMABLE : STREAM_NAME_SEALED;
    const stream = await this.createStream(deviceId, name, { ...o, zeroMask: sealed });
    let e2e: EndToEndOptions = o;
    if (o.trustHub && sealed) {
      // Trusting the hub for identity: the device must prove the key it announced to the hub
      // (and, after a drop, that same key again on every resumed stream).
      if (!stream.devicePublicKey) {
        stream.transport.close();
        throw new DevstreamsError(
          'ERR_HANDSHAKE_PEER_UNKNOWN',
          `the hub knows no public key for device ${deviceId} (it announces one when it connects)`,
        );
      }
      e2e = { ...o, verifyPeer: expectKey(stream.devicePublicKey) };
    }
    const ds = await startDeviceSession(stream.transport, 'initiator', deviceId, stream.streamId, e2e);
    const r = ds.resumable;
    if (r) {
      // When the stream drops: ask the hub for a new stream to the same device, named as a
      // resume of this session, run a fresh handshake on it, and continue the session there.
      keepResumed(r, {
        dial: async () => {
          const next = await this.createStream(deviceId, resumeStreamName(r.sessionId!), { ...o, zeroMask: true });
          return (await secureLink(next.transport, 'initiator', next.streamId, e2e)).link;
        },
        onAttemptFailed: o.onResumeAttemptFailed,
      });
    }
    return ds;
  }

  // --- registry (owner connection string) ---

  private async call(method: string, path: string, body?: unknown): Promise<unknown> {
    const r = await this.http.request(method, path, { authorization: this.authHeader() }, body);
    if (r.status < 200 || r.status >= 300) throw errorFromBody(r.status, r.body);
    return r.body;
  }

  /** Registers a device; resolves with its connection string. Owner only. */
  async addDevice(deviceId: string): Promise<DeviceInfo> {
    return (await this.call('PUT', `/devices/${encodeURIComponent(deviceId)}`, {})) as DeviceInfo;
  }

  /** A device's record and status; with a service connection string, without its connection string. */
  async getDevice(deviceId: string): Promise<DeviceInfo> {
    return (await this.call('GET', `/devices/${encodeURIComponent(deviceId)}`)) as DeviceInfo;
  }

  /** Every registered device with its status (owner or service). */
  async listDevices(): Promise<DeviceInfo[]> {
    return ((await this.call('GET', '/devices')) as { devices: DeviceInfo[] }).devices;
  }

  async removeDevice(deviceId: string): Promise<void> {
    await this.call('DELETE', `/devices/${encodeURIComponent(deviceId)}`);
  }

  async rotateDeviceKey(deviceId: string): Promise<DeviceInfo> {
    return (await this.call('POST', `/devices/${encodeURIComponent(deviceId)}/rotate-key`)) as DeviceInfo;
  }

  /** Releases pooled HTTP connections. */
  close(): void {
    this.http.close();
  }
}
