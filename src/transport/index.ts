/** Transports: message pipes the record layer and the mux run over. */
export * from './transport.js';
export { createMemoryTransportPair, type MemoryTransportOptions } from './memory.js';
export { TcpTransport, connectTcpTransport, type TcpTransportOptions } from './tcp.js';
export { WebSocketTransport, connectWebSocketTransport, webSocketClientOptions, type WebSocketTransportOptions } from './websocket.js';
export { WebSocketClientTransport, type WebSocketClientTransportOptions } from './ws-client-transport.js';
export { connectWebSocket, type WebSocketConnectOptions } from './ws-connect.js';
export {
  fetchPinnedCertificate,
  certificateSha256,
  isSelfSigned,
  notSelfSignedError,
  pemCertificateSha256,
  PIN_PROBE_TIMEOUT_MS,
} from './pinned-cert.js';
