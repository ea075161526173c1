/**
 * Account passwords, hashed with Argon2id (RFC 9106) by the native `argon2` package: it runs on
 * libuv's thread pool, so a hash (tens of milliseconds at the default cost) never blocks the
 * event loop, unlike a WebAssembly hash on the main thread.
 */
import argon2 from 'argon2';
import type { Argon2Params } from '../config.js';

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** False for a wrong password and for a stored hash that cannot be read. */
  verify(hash: string, password: string): Promise<boolean>;
}

export function argon2idHasher(p: Argon2Params): PasswordHasher {
  return {
    hash: (password) => argon2.hash(password, { type: argon2.argon2id, memoryCost: p.memoryKib, timeCost: p.iterations, parallelism: p.parallelism }),
    async verify(hash, password) {
      try {
        return await argon2.verify(hash, password);
      } catch {
        return false;
      }
    },
  };
}
