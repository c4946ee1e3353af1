/**
 * One stream request from the hub, as the device application sees it: accept it raw, accept it
 * as a mux session (what kind is decided beside startDeviceSession, in device-session.ts), or
 * reject it. Exactly one answer goes to the hub.
 */
import { DevstreamsError } from '../errors.js';
import { MAX_REASON_LENGTH, type StreamRequestMessage, type StreamResponseMessage } from '../hub-api/control-protocol.js';
import type { WebSocketClientTransport } from '../transport/index.js';
import type { DeviceClient } from './device-client.js';
import {
  STREAM_NAME_PLAIN,
  acceptDeviceSession,
  type DeviceSession,
  type DeviceStreamSide,
  type EndToEndOptions,
} from './device-session.js';

/** A stream request from the hub; call exactly one of `accept`, `acceptSession` or `reject`. */
export class IncomingStreamRequest {
  private answered = false;

  /** @internal created by DeviceClient */
  constructor(
    private readonly client: DeviceClient,
    private readonly msg: StreamRequestMessage,
  ) {}

  /** The name the service gave the stream (it says what the service will run on it). */
  get streamName(): string {
    return this.msg.streamName;
  }

  /** The hub's id of the stream, bound into the end-to-end handshake. */
  get streamId(): string {
    return this.msg.streamId;
  }

  /** True when the service asked for a plaintext stream (no record layer). */
  get plaintext(): boolean {
    return this.msg.streamName === STREAM_NAME_PLAIN;
  }

  /** Accepts and opens the device side; resolves with its raw transport (no record layer, no mux). */
  async accept(): Promise<WebSocketClientTransport> {
    this.checkUrl();
    this.answer(true);
    return this.client.openDeviceSide(this.msg, false);
  }

  /**
   * Accepts and opens the device side as a mux session (role responder), sealed end to end
   * unless the service asked for plaintext, resumable or resuming as the stream name says. A
   * plaintext request is rejected unless `allowPlaintext` is set, before any byte flows.
   * Aborting `signal` closes the stream (so a handshake still running fails); the device proxy
   * uses it to drop the oldest unauthenticated stream when too many are starting.
   */
  async acceptSession(o: EndToEndOptions & { allowPlaintext?: boolean; signal?: AbortSignal }): Promise<DeviceSession> {
    this.checkUrl();
    const { signal } = o;
    const side: DeviceStreamSide = {
      deviceId: this.client.deviceId,
      streamId: this.msg.streamId,
      streamName: this.msg.streamName,
      held: this.client.resumeRegistry,
      accept: async (zeroMask) => {
        this.answer(true);
        const transport = await this.client.openDeviceSide(this.msg, zeroMask);
        if (signal) {
          const abort = (): void =>
            transport.close(
              new DevstreamsError('ERR_RATE_LIMITED', `stream dropped before its handshake ended: ${String(signal.reason ?? 'aborted')}`),
            );
          if (signal.aborted) {
            abort();
            throw new DevstreamsError('ERR_RATE_LIMITED', 'stream dropped before its handshake ended');
          }
          signal.addEventListener('abort', abort, { once: true });
        }
        return transport;
      },
      reject: (reason) => this.reject(reason),
    };
    return acceptDeviceSession(side, o);
  }

  /** Rejects; the service sees ERR_STREAM_REJECTED with `reason`. */
  reject(reason = 'rejected by device'): void {
    this.answer(false, reason.slice(0, MAX_REASON_LENGTH));
  }

  /** Rejects (and throws ERR_STREAM_REJECTED) a stream whose URL is not on this device's hub. */
  private checkUrl(): void {
    const problem = this.client.streamUrlProblem(this.msg.url);
    if (problem === undefined) return;
    this.reject('stream URL refused by the device');
    throw new DevstreamsError('ERR_STREAM_REJECTED', `refused a stream request: ${problem}`);
  }

  private answer(accept: boolean, reason?: string): void {
    if (this.answered) throw new DevstreamsError('ERR_BAD_REQUEST', 'stream request already answered');
    this.answered = true;
    const m: StreamResponseMessage = { type: 'streamResponse', requestId: this.msg.requestId, accept };
    if (reason !== undefined) m.reason = reason;
    this.client.sendControl(m);
  }
}
