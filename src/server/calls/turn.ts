/**
 * TURN credentials in coturn's shared-secret REST scheme ("TURN REST API", coturn
 * `use-auth-secret`): the username is "<expiry unix seconds>:<who>", the password is
 * base64(HMAC-SHA1(secret, username)); coturn recomputes it and refuses an expired username.
 */
import { createHmac } from 'node:crypto';
import type { TurnConfig } from '../config.js';

export interface TurnCredential {
  readonly username: string;
  readonly credential: string;
  readonly ttl: number;
  readonly uris: readonly string[];
}

export function turnCredential(config: TurnConfig, who: string, nowMs: number): TurnCredential {
  const expiry = Math.floor(nowMs / 1000) + config.ttlSeconds;
  const username = `${expiry}:${who}`;
  const credential = createHmac('sha1', config.secret).update(username).digest('base64');
  return { username, credential, ttl: config.ttlSeconds, uris: config.urls };
}
