/**
 * SPEC §8 safety numbers. Not libsignal's fingerprint: the first hash starts with u16(0) and the
 * user_id comes after AK_pub. 5200 SHA-512 iterations, run synchronously with @noble/hashes
 * (no await per iteration: about 40 ms per fingerprint in Node, against 120 ms through WebCrypto).
 */
import { sha512 } from '@noble/hashes/sha2.js';
import { checkBytes, concat, u16, utf8 } from './bytes.js';
import { fail } from './errors.js';
import { MAX_USER_ID_BYTES } from './limits.js';

const ITERATIONS = 5200;
const CHUNKS = 6;
const CHUNK_BYTES = 5;
const DIGITS_PER_CHUNK = 5;
const FINGERPRINT_DIGITS = CHUNKS * DIGITS_PER_CHUNK;
const FINGERPRINT = /^[0-9]{30}$/;
const SAFETY_NUMBER = /^[0-9]{60}$/;

/** One party's 30-digit fingerprint of its account key (AK_pub, the bare 32-byte Ed25519 key). */
export function fingerprint(akPub: Uint8Array, userId: string): string {
  checkBytes('akPub', akPub, 32);
  if (typeof userId !== 'string') fail('bad_format', 'userId must be a string');
  const id = utf8(userId);
  if (id.length > MAX_USER_ID_BYTES) fail('bad_length', 'userId longer than 65535 bytes');
  const buf = new Uint8Array(64 + 32);
  buf.set(sha512(concat(u16(0), akPub, id)));
  buf.set(akPub, 64);
  for (let i = 1; i < ITERATIONS; i++) buf.set(sha512(buf));
  let out = '';
  for (let c = 0; c < CHUNKS; c++) {
    let n = 0;
    // A u40 is exact in a double (below 2^53).
    for (let j = 0; j < CHUNK_BYTES; j++) n = n * 256 + buf[c * CHUNK_BYTES + j]!;
    out += String(n % 100000).padStart(DIGITS_PER_CHUNK, '0');
  }
  return out;
}

/** The 60-digit safety number of two fingerprints: the numerically smaller first, so both sides agree. */
export function safetyNumber(a: string, b: string): string {
  if (!FINGERPRINT.test(a) || !FINGERPRINT.test(b)) fail('bad_format', `a fingerprint is ${FINGERPRINT_DIGITS} digits`);
  // Same length, digits only: string order is numeric order.
  return a <= b ? a + b : b + a;
}

/** 12 groups of 5 digits joined by single spaces, as shown to the user. */
export function displaySafetyNumber(sn: string): string {
  if (!SAFETY_NUMBER.test(sn)) fail('bad_format', 'a safety number is 60 digits');
  return sn.match(/[0-9]{5}/g)!.join(' ');
}

export interface AccountIdentity {
  readonly akPub: Uint8Array;
  readonly userId: string;
}

/** The safety number two accounts compare, from both identities: the same whichever side asks. */
export function safetyNumberOf(a: AccountIdentity, b: AccountIdentity): string {
  return safetyNumber(fingerprint(a.akPub, a.userId), fingerprint(b.akPub, b.userId));
}
