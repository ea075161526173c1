/** The GChat protocol (SPEC v1): isomorphic, no I/O; clock, randomness and crypto are passed in. */
export * from './bytes.js';
export * from './errors.js';
export * from './limits.js';
export * from './primitives.js';
export * from './keys.js';
export * from './handshake.js';
export * from './ratchet.js';
export * from './wire.js';
export * from './content.js';
export * from './session.js';
export * from './snapshot.js';
export * from './memory-store.js';
export * from './fingerprint.js';
export * from './backup.js';
