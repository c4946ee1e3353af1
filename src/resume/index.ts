/** Session resumption: a `Transport` that survives the loss of the connection below it. */
export {
  ResumableTransport,
  type Link,
  type ResumeRole,
  type ResumableState,
  type ResumedInfo,
  type ResumableEvents,
} from './resumable-transport.js';
export { DEFAULT_RESUME_CONFIG, delayControlledResume, resolveResumeConfig, type ResumeConfig } from './config.js';
export { ResumeRegistry } from './registry.js';
export { keepResumed, reconnectDelay, type ReconnectOptions } from './reconnect.js';
export { encodeResume, decodeResume, type ResumeMessage } from './wire.js';
export { makeProof } from './proof.js';
