/**
 * Device tokens: 256 random bits, shown to the client once as base64url (43 characters), stored
 * only as their SHA-256 (a token has full entropy, so a fast hash is enough), compared in
 * constant time.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { toBase64url } from '../../protocol/bytes.js';
import type { RandomSource } from '../../protocol/primitives.js';

export const TOKEN_BYTES = 32;
export const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export function newDeviceToken(random: RandomSource): { token: string; hash: Uint8Array } {
  const raw = random(TOKEN_BYTES);
  const token = toBase64url(raw);
  raw.fill(0);
  return { token, hash: hashToken(token) };
}

export function hashToken(token: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(token, 'utf8').digest());
}

export function hashesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
