/**
 * Field schemas shared by the account, key and delivery shapes. Each states its whole rule in
 * what the OpenAPI document carries (pattern, bounds), so that what the document admits is
 * exactly what the server accepts: a client generated from the document is never refused for a
 * value the document allows.
 */
import { z } from 'zod';

const B64_CHAR = '[A-Za-z0-9_-]';
/** The last character of a base64url string whose final group holds 1 byte (4 zero bits after it), or 2 bytes (2 zero bits). */
const LAST_OF_1 = '[AQgw]';
const LAST_OF_2 = '[AEIMQUYcgkosw048]';

/** Characters of `n` bytes in base64url without padding. */
export const b64Length = (n: number): number => Math.ceil((n * 4) / 3);

/**
 * Canonical base64url without padding (RFC 4648 §3.5: unused bits zero), as the server's decoder
 * requires: of exactly `bytes` bytes, or of any length when `bytes` is omitted.
 */
export function base64urlPattern(bytes?: number): string {
  if (bytes === undefined) return `^(?:${B64_CHAR}{4})*(?:${B64_CHAR}${LAST_OF_1}|${B64_CHAR}{2}${LAST_OF_2})?$`;
  const groups = Math.floor(bytes / 3) * 4;
  const rest = bytes % 3;
  if (rest === 0) return `^${B64_CHAR}{${groups}}$`;
  return rest === 1 ? `^${B64_CHAR}{${groups + 1}}${LAST_OF_1}$` : `^${B64_CHAR}{${groups + 2}}${LAST_OF_2}$`;
}

/** A base64url string (canonical, no padding) in a request, still encoded. */
export const base64url = (what: string, bytes?: number) =>
  (bytes === undefined ? z.string() : z.string().length(b64Length(bytes)))
    .regex(new RegExp(base64urlPattern(bytes)), 'must be canonical base64url without padding')
    .meta({ description: `${what}: ${bytes === undefined ? '' : `${bytes} bytes, `}base64url without padding` });

/**
 * The decimal form of the integers 1..max, no sign, no leading zero: a pattern a generator can
 * honour, where a bare `[0-9]{1,n}` would admit values above `max`.
 */
export function decimalPattern(max: bigint): string {
  const s = max.toString();
  const alts: string[] = [];
  if (s.length > 1) alts.push(s.length === 2 ? '[1-9]' : `[1-9][0-9]{0,${s.length - 2}}`);
  for (let i = 0; i < s.length; i++) {
    const lo = i === 0 ? 1 : 0;
    const hi = Number(s[i]) - 1;
    if (hi < lo) continue;
    const digit = lo === hi ? String(lo) : `[${lo}-${hi}]`;
    const tail = s.length - i - 1;
    alts.push(`${s.slice(0, i)}${digit}${tail > 0 ? `[0-9]{${tail}}` : ''}`);
  }
  alts.push(s);
  return `^(?:${alts.join('|')})$`;
}

export const U32_MAX = 0xffffffff;
/** PostgreSQL bigint: the largest envelope id a queue can hold. */
export const BIGINT_MAX = 2n ** 63n - 1n;

export const username = z
  .string()
  .regex(/^[a-z0-9._-]{3,32}$/, 'must be 3 to 32 of a-z 0-9 . _ -')
  .meta({ description: 'a username: the user_id in every signed structure (SPEC §2)', example: 'alice' });

export const deviceId = z
  .number()
  .int()
  .min(1)
  .max(U32_MAX)
  .meta({ description: 'device id, u32, assigned per account from 1 and never reused' });

/** A device id in a path: decimal, 1..2^32-1. */
export const deviceIdParam = z
  .string()
  .regex(new RegExp(decimalPattern(BigInt(U32_MAX))), 'must be a device id (1 to 4294967295)')
  .transform(Number)
  .pipe(deviceId)
  .meta({ param: { description: 'device id, 1 to 4294967295' } });

/** A server-assigned envelope id: a decimal string, 1..2^63-1. */
export const serverId = z
  .string()
  .regex(new RegExp(decimalPattern(BIGINT_MAX)), 'must be a server envelope id (1 to 9223372036854775807)')
  .meta({ description: 'a server envelope id: decimal, 1 to 9223372036854775807; ids grow along each queue' });
