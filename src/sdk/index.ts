/** SDKs: the device and service clients users embed. */
export { DeviceClient, DEFAULT_HUB_SILENCE_MS, type DeviceClientOptions } from './device-client.js';
export { IncomingStreamRequest } from './incoming-stream.js';
export {
  ServiceClient,
  type ServiceClientOptions,
  type CreateStreamOptions,
  type StreamGrant,
  type ServiceStream,
  type DeviceInfo,
} from './service-client.js';
export { openStreamTransport, type OpenStreamOptions } from './stream-transport.js';
export { Backoff, type BackoffOptions } from './backoff.js';
export {
  STREAM_NAME_PLAIN,
  STREAM_NAME_SEALED,
  parseResumeStreamName,
  startDeviceSession,
  streamPrologue,
  type DeviceSession,
  type EndToEndOptions,
} from './device-session.js';
