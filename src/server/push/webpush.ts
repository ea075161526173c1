/**
 * Web Push (RFC 8030) with VAPID (RFC 8292) and payload encryption (RFC 8291, aes128gcm), the
 * request built by the `web-push` library and sent with fetch (bounded by a timeout). The payload
 * is content-free: it only says "wake up" or "a call".
 */
import webpush from 'web-push';
import { type PushOutcome, type PushProvider, type Registration, type Wake, wakePayload } from './types.js';

export interface VapidKeys {
  /** Uncompressed P-256 point, base64url (the browser's applicationServerKey). */
  readonly publicKey: string;
  readonly privateKey: string;
}

export function generateVapidKeys(): VapidKeys {
  const k = webpush.generateVAPIDKeys();
  return { publicKey: k.publicKey, privateKey: k.privateKey };
}

export interface WebPushOptions {
  readonly vapid: VapidKeys;
  readonly subject: string;
  readonly ttlSeconds: number;
  readonly timeoutMs: number;
}

/** A VAPID JWT is signed for this long and reused (RFC 8292 allows up to 24 hours). */
const VAPID_JWT_SECONDS = 12 * 3600;
/** A cached JWT is replaced once less than this is left (s). */
const VAPID_RENEW_SECONDS = 3600;
/** Push service origins whose JWT is cached (there are few: one per browser vendor). */
const MAX_VAPID_CACHE = 1000;

export class WebPushProvider implements PushProvider {
  readonly name = 'webpush' as const;
  /** Signing a JWT costs several times the payload encryption: one per push service origin, reused. */
  private readonly vapidByOrigin = new Map<string, { authorization: string; exp: number }>();

  constructor(private readonly o: WebPushOptions) {}

  private vapidAuthorization(endpoint: string): string {
    const origin = new URL(endpoint).origin;
    const now = Math.floor(Date.now() / 1000);
    const hit = this.vapidByOrigin.get(origin);
    if (hit && hit.exp - now > VAPID_RENEW_SECONDS) return hit.authorization;
    const exp = now + VAPID_JWT_SECONDS;
    const h = webpush.getVapidHeaders(origin, this.o.subject, this.o.vapid.publicKey, this.o.vapid.privateKey, 'aes128gcm', exp);
    if (this.vapidByOrigin.size >= MAX_VAPID_CACHE) this.vapidByOrigin.clear();
    this.vapidByOrigin.set(origin, { authorization: h.Authorization, exp });
    return h.Authorization;
  }

  async send(reg: Registration, wake: Wake): Promise<PushOutcome> {
    if (!reg.p256dh || !reg.auth) return { kind: 'gone', reason: 'no subscription keys' };
    let details: ReturnType<typeof webpush.generateRequestDetails>;
    try {
      details = webpush.generateRequestDetails(
        { endpoint: reg.address, keys: { p256dh: reg.p256dh, auth: reg.auth } },
        JSON.stringify(wakePayload(wake)),
        {
          headers: { Authorization: this.vapidAuthorization(reg.address) },
          TTL: wake.urgent ? 60 : this.o.ttlSeconds,
          urgency: wake.urgent ? 'high' : 'normal',
          contentEncoding: 'aes128gcm',
          // One pending wake-up per subscription at the push service: a newer one replaces it.
          ...(wake.urgent ? {} : { topic: 'wake' }),
        },
      );
    } catch (err) {
      return { kind: 'gone', reason: `unusable subscription: ${(err as Error).message}` };
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(details.headers)) headers[k] = String(v);
    try {
      const res = await fetch(details.endpoint, {
        method: 'POST',
        headers,
        body: details.body ? new Uint8Array(details.body) : null,
        redirect: 'error',
        signal: AbortSignal.timeout(this.o.timeoutMs),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status === 404 || res.status === 410) return { kind: 'gone', reason: `push service answered ${res.status}` };
      if (res.status >= 200 && res.status < 300) return { kind: 'sent' };
      return { kind: 'failed', reason: `push service answered ${res.status}` };
    } catch (err) {
      return { kind: 'failed', reason: (err as Error).name };
    }
  }

  async close(): Promise<void> {}
}
