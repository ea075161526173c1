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

export class WebPushProvider implements PushProvider {
  readonly name = 'webpush' as const;

  constructor(private readonly o: WebPushOptions) {}

  async send(reg: Registration, wake: Wake): Promise<PushOutcome> {
    if (!reg.p256dh || !reg.auth) return { kind: 'gone', reason: 'no subscription keys' };
    let details: ReturnType<typeof webpush.generateRequestDetails>;
    try {
      details = webpush.generateRequestDetails(
        { endpoint: reg.address, keys: { p256dh: reg.p256dh, auth: reg.auth } },
        JSON.stringify(wakePayload(wake)),
        {
          vapidDetails: { subject: this.o.subject, publicKey: this.o.vapid.publicKey, privateKey: this.o.vapid.privateKey },
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
