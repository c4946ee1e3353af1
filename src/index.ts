/** devstreams: the embeddable library. Each layer is exported from its own module. */
export * from './errors.js';
export * from './transport/index.js';
export * from './crypto/index.js';
export * from './mux/index.js';
export * from './auth/index.js';
export * from './sdk/index.js';
export * from './proxy/index.js';
export * as hub from './hub/index.js';
export * from './resume/index.js';
