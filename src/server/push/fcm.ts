/**
 * FCM HTTP v1: a service-account JWT (RS256) is exchanged at the account's token_uri for an
 * OAuth2 access token (cached until shortly before it expires), which authorises
 * `POST {endpoint}/v1/projects/{project}/messages:send`. Messages are data-only and high
 * priority, carrying the same content-free payload as every wake-up. A 404 UNREGISTERED (or a
 * 400 naming the token invalid) removes the token.
 */
import { createSign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { FcmConfig } from '../config.js';
import { type PushOutcome, type PushProvider, type Registration, type Wake, wakePayload } from './types.js';

const SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
/** A token is renewed this long before it expires (ms). */
const RENEW_EARLY_MS = 60_000;

export const ServiceAccount = z.object({
  project_id: z.string().min(1),
  client_email: z.string().min(1),
  private_key: z.string().min(1),
  token_uri: z.string().url(),
});
export type ServiceAccount = z.infer<typeof ServiceAccount>;

const TokenAnswer = z.object({ access_token: z.string().min(1), expires_in: z.number().positive() });
const ErrorAnswer = z.object({
  error: z.object({ status: z.string().optional(), details: z.array(z.object({ errorCode: z.string().optional() }).loose()).optional() }).loose(),
});

const b64url = (s: string | Buffer): string => Buffer.from(s).toString('base64url');

export class FcmProvider implements PushProvider {
  readonly name = 'fcm' as const;
  private readonly account: ServiceAccount;
  private token: { value: string; expiresAt: number } | null = null;
  private fetching: Promise<string> | null = null;

  constructor(
    private readonly config: FcmConfig,
    private readonly o: { ttlSeconds: number; timeoutMs: number },
  ) {
    this.account = ServiceAccount.parse(JSON.parse(readFileSync(config.serviceAccountFile, 'utf8')));
  }

  /** The signed assertion of the JWT bearer grant (RFC 7523). */
  private assertion(nowS: number): string {
    const header = b64url(JSON.stringify({ alg: 'RS256', typ: 'JWT' }));
    const claims = b64url(JSON.stringify({ iss: this.account.client_email, scope: SCOPE, aud: this.account.token_uri, iat: nowS, exp: nowS + 3600 }));
    const sig = createSign('RSA-SHA256').update(`${header}.${claims}`).sign(this.account.private_key);
    return `${header}.${claims}.${b64url(sig)}`;
  }

  private async accessToken(): Promise<string> {
    if (this.token && this.token.expiresAt - RENEW_EARLY_MS > Date.now()) return this.token.value;
    this.fetching ??= (async () => {
      try {
        const res = await fetch(this.account.token_uri, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: this.assertion(Math.floor(Date.now() / 1000)) }),
          signal: AbortSignal.timeout(this.o.timeoutMs),
        });
        const body: unknown = await res.json().catch(() => null);
        const t = TokenAnswer.safeParse(body);
        if (!res.ok || !t.success) throw new Error(`token exchange answered ${res.status}`);
        this.token = { value: t.data.access_token, expiresAt: Date.now() + t.data.expires_in * 1000 };
        return t.data.access_token;
      } finally {
        this.fetching = null;
      }
    })();
    return this.fetching;
  }

  async send(reg: Registration, wake: Wake): Promise<PushOutcome> {
    const data: Record<string, string> = { v: '1', kind: wakePayload(wake).kind };
    if (wake.urgent && wake.callId) data.call_id = wake.callId;
    const message = {
      message: {
        token: reg.address,
        data,
        android: { priority: 'HIGH', ttl: `${wake.urgent ? 60 : this.o.ttlSeconds}s`, ...(wake.urgent ? {} : { collapse_key: 'wake' }) },
      },
    };
    try {
      const token = await this.accessToken();
      const res = await fetch(`${this.config.endpoint}/v1/projects/${encodeURIComponent(this.account.project_id)}/messages:send`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify(message),
        signal: AbortSignal.timeout(this.o.timeoutMs),
      });
      const body: unknown = await res.json().catch(() => null);
      if (res.ok) return { kind: 'sent' };
      if (res.status === 401) this.token = null;
      const e = ErrorAnswer.safeParse(body);
      const codes = e.success ? (e.data.error.details ?? []).map((d) => d.errorCode).filter((c): c is string => !!c) : [];
      const reason = codes[0] ?? (e.success ? e.data.error.status : undefined) ?? `status ${res.status}`;
      if (codes.includes('UNREGISTERED') || (res.status === 404 && reason === 'NOT_FOUND')) return { kind: 'gone', reason };
      return { kind: 'failed', reason };
    } catch (err) {
      return { kind: 'failed', reason: (err as Error).message };
    }
  }

  async close(): Promise<void> {}
}
