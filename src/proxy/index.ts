/** The two local proxies: device side (allow list, connect to targets) and service side (listen, forward, SOCKS5). */
export { AllowList } from './allow-list.js';
export { bridge } from './bridge.js';
export {
  serveDeviceChannels,
  deviceChannelHandler,
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_ACCEPT_HOLD_MS,
  type DeviceHandlerOptions,
} from './device-handler.js';
export { parseForward, parseListen, type ForwardSpec } from './forward-spec.js';
export { SessionSource, type SessionSourceOptions } from './session-source.js';
export { ServiceProxy, type ServiceProxyOptions, type BoundListener, type ConnectionEvent } from './service-proxy.js';
export {
  DeviceProxy,
  DEFAULT_MAX_DEVICE_SESSIONS,
  DEFAULT_MAX_DEVICE_STARTING,
  type DeviceProxyOptions,
  type DeviceProxyEvents,
} from './device-proxy.js';
export { createServiceApp, DEFAULT_DEVICE_WAIT_MS, type ServiceAppOptions, type ResumeEvent } from './service-app.js';
export {
  devstreamsHome,
  defaultDeviceKeyPath,
  defaultServiceKeyPath,
  defaultKnownDevicesPath,
  defaultAuthorizedServicesPath,
  loadOrCreateKeyPair,
} from './key-files.js';
export {
  ControlServer,
  defaultControlPath,
  requestChannel,
  requestExit,
  removeStaleSocket,
  masterListens,
  MAX_CONTROL_LINE,
  type ControlServerOptions,
} from './control-socket.js';
export { ServiceProxyMetrics, OPEN_BUCKETS_SECONDS } from './metrics.js';
