/** The record layer: Noise XX handshake, sealed records, rekey, worker offload, peer trust. */
export { secureInitiator, secureResponder, SecureTransport, type SecureSessionInfo } from './secure-transport.js';
export { type SecureTransportOptions, type CryptoMode, DEFAULT_CRYPTO_MODE } from './options.js';
export type { CipherName, RecordSuite } from './aead.js';
export {
  generateStaticKeyPair,
  saveStaticKeyPair,
  loadStaticKeyPair,
  keyPairFromPrivate,
  encodePublicKey,
  decodePublicKey,
  type StaticKeyPair,
} from './keys.js';
export { KnownDevices, expectKey, allowKeys, acceptAnyKey, type PeerVerifier } from './trust.js';
export { AuthorizedServices, type AuthorizedService } from './authorized-services.js';
export { noiseProtocolName } from './noise.js';
export { calibrate, type CalibrationResult } from './calibrate.js';
export { closeCryptoPools } from './worker-pool.js';
export * as recordLimits from './constants.js';
