/** Credentials shared by the hub and the SDKs: connection strings and SAS tokens. No I/O. */
export * from './connection-string.js';
export * from './sas.js';
