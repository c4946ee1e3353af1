/** The hub: registry, SAS authentication, stream rendezvous and relay. */
export { Hub, isLoopback, type HubStartOptions, type HubLogger } from './server.js';
export { STREAM_NAME_PATTERN, type StreamResponseBody } from './stream-request.js';
export * from './config.js';
export { DeviceRegistry, generateKey, REGISTRY_FILE, type DeviceRecord, type HubEndpoint } from './registry.js';
export {
  MemoryPresenceStore,
  MemoryStreamRouter,
  type PresenceStore,
  type StreamRouter,
  type StreamTicket,
  type StreamSide,
  type ClaimResult,
} from './presence.js';
export { CLOSE_CODES } from '../hub-api/control-protocol.js';
export type { RelayStats } from './splice.js';
export { createSelfSignedCertificate, type SelfSignedCertificate } from './tls.js';
export { serveMetrics, type MetricsListener } from './metrics-listener.js';
