/** What the push side deals in: registrations, wake-ups, providers and their outcomes. */

export const PUSH_KINDS = ['webpush', 'apns', 'apns-voip', 'fcm'] as const;
export type PushKind = (typeof PUSH_KINDS)[number];

/** One device's registration of one kind, as stored. */
export interface Registration {
  readonly accountId: string;
  readonly deviceId: number;
  readonly kind: PushKind;
  /** Web Push endpoint URL, or the APNs / FCM token. */
  readonly address: string;
  /** webpush: the subscription's public key and auth secret, base64url. */
  readonly p256dh: string | null;
  readonly auth: string | null;
  /** apns, apns-voip: the app's bundle id. */
  readonly bundle: string | null;
}

/**
 * A wake-up. It carries no message content, no sender and no conversation: the woken device
 * fetches its queue over its own connection. `callId` (urgent only) is opaque: the call-offer's
 * message_id, which the device finds in its queue.
 */
export interface Wake {
  readonly urgent: boolean;
  readonly callId: string | null;
}

/** `gone`: the service says this registration is dead (it is removed). */
export type PushOutcome = { readonly kind: 'sent' } | { readonly kind: 'gone'; readonly reason: string } | { readonly kind: 'failed'; readonly reason: string };

/** A push service client; one per provider. */
export interface PushProvider {
  readonly name: 'webpush' | 'apns' | 'fcm';
  /** Never throws: every failure is an outcome. */
  send(reg: Registration, wake: Wake): Promise<PushOutcome>;
  close(): Promise<void>;
}

/** The JSON every wake-up carries where a payload is sent (encrypted end to end for Web Push). */
export function wakePayload(wake: Wake): { readonly v: 1; readonly kind: 'wake' | 'call' } {
  return { v: 1, kind: wake.urgent ? 'call' : 'wake' };
}
