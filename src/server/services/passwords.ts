/**
 * Account passwords, hashed with Argon2id (RFC 9106) by the native `argon2` package: it runs on
 * libuv's thread pool, so a hash (tens of milliseconds at the default cost) never blocks the
 * event loop, unlike a WebAssembly hash on the main thread.
 */
import { randomBytes } from 'node:crypto';
import argon2 from 'argon2';
import type { Argon2Params } from '../config.js';

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /** False for a wrong password and for a stored hash that cannot be read. */
  verify(hash: string, password: string): Promise<boolean>;
  /**
   * The work of `verify` for an account that does not exist (against a dummy hash made with the
   * same parameters), so an unknown username answers as slowly as a known one. Always false.
   */
  verifyNone(password: string): Promise<false>;
}

export function argon2idHasher(p: Argon2Params): PasswordHasher {
  const hash = (password: string) => argon2.hash(password, { type: argon2.argon2id, memoryCost: p.memoryKib, timeCost: p.iterations, parallelism: p.parallelism });
  const verify = async (h: string, password: string) => {
    try {
      return await argon2.verify(h, password);
    } catch {
      return false;
    }
  };
  let dummy: Promise<string> | undefined;
  return {
    hash,
    verify,
    async verifyNone(password) {
      dummy ??= hash(randomBytes(32).toString('base64url'));
      await verify(await dummy, password);
      return false;
    },
  };
}
