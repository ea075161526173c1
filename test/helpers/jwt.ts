/** JWT parts and signature checks for the push-service stand-ins (ES256 raw r||s, RS256). */
import { type KeyObject, verify } from 'node:crypto';

export interface Jwt {
  readonly header: Record<string, unknown>;
  readonly claims: Record<string, unknown>;
  readonly signingInput: string;
  readonly signature: Buffer;
}

export function parseJwt(token: string): Jwt {
  const parts = token.split('.');
  if (parts.length !== 3) throw new Error('a JWT has three parts');
  const [h, c, s] = parts as [string, string, string];
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, unknown>,
    claims: JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as Record<string, unknown>,
    signingInput: `${h}.${c}`,
    signature: Buffer.from(s, 'base64url'),
  };
}

/** ES256 as JWS has it: SHA-256 and a 64-byte r||s signature. */
export function verifyEs256(jwt: Jwt, key: KeyObject): boolean {
  return jwt.signature.length === 64 && verify('sha256', Buffer.from(jwt.signingInput), { key, dsaEncoding: 'ieee-p1363' }, jwt.signature);
}

export function verifyRs256(jwt: Jwt, key: KeyObject): boolean {
  return verify('RSA-SHA256', Buffer.from(jwt.signingInput), key, jwt.signature);
}
