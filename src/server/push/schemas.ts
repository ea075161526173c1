/** The push and TURN routes' shapes: requests are validated with them and documented from them. */
import { ECDH } from 'node:crypto';
import { z } from 'zod';

const B64URL = /^[A-Za-z0-9_-]+$/;

/** A P-256 public key as a browser's PushSubscription gives it (the point itself is checked by the service: 422 bad_key). */
const p256dh = z
  .string()
  .length(87)
  .regex(B64URL, 'base64url without padding')
  .meta({ description: "the subscription's P-256 public key (65 bytes, uncompressed), base64url" });

/** True for an uncompressed point on P-256. */
export function isP256Point(s: string): boolean {
  try {
    const raw = Buffer.from(s, 'base64url');
    ECDH.convertKey(raw, 'prime256v1');
    return raw[0] === 0x04;
  } catch {
    return false;
  }
}

export const WebPushRegistrationIn = z
  .object({
    kind: z.literal('webpush'),
    endpoint: z.string().max(2048).meta({ description: "the PushSubscription's endpoint (https)" }),
    keys: z.object({
      p256dh,
      auth: z.string().length(22).regex(B64URL, 'base64url without padding').meta({ description: 'the 16-byte auth secret, base64url' }),
    }),
  })
  .meta({ id: 'WebPushRegistrationIn' });

const bundle = z
  .string()
  .max(155)
  .regex(/^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/, 'a bundle id such as com.example.gchat')
  .meta({ description: "the app's bundle id: the APNs topic (with .voip appended for VoIP pushes)" });

const apnsToken = z
  .string()
  .regex(/^[0-9a-fA-F]{64,200}$/, 'a hex APNs device token')
  .transform((s) => s.toLowerCase());

export const ApnsRegistrationIn = z
  .object({
    kind: z.enum(['apns', 'apns-voip']).meta({ description: 'apns: the regular token (alert wake-ups); apns-voip: the PushKit token (call offers)' }),
    token: apnsToken,
    bundle,
  })
  .meta({ id: 'ApnsRegistrationIn' });

export const FcmRegistrationIn = z
  .object({
    kind: z.literal('fcm'),
    token: z.string().min(1).max(4096).regex(/^[A-Za-z0-9_:.-]+$/, 'an FCM registration token'),
  })
  .meta({ id: 'FcmRegistrationIn' });

export const PushRegistrationIn = z.discriminatedUnion('kind', [WebPushRegistrationIn, ApnsRegistrationIn, FcmRegistrationIn]).meta({ id: 'PushRegistrationIn' });
export type PushRegistrationIn = z.output<typeof PushRegistrationIn>;

export const PushKindParams = z.object({ kind: z.enum(['webpush', 'apns', 'apns-voip', 'fcm']) });

export const PushRegistrationsOut = z.object({
  registrations: z.array(
    z.object({
      kind: z.enum(['webpush', 'apns', 'apns-voip', 'fcm']),
      address: z.string().meta({ description: 'the Web Push endpoint or the token' }),
      bundle: z.string().nullable(),
    }),
  ),
});

export const VapidOut = z.object({
  public_key: z.string().meta({ description: "the server's VAPID public key (applicationServerKey): a P-256 point, base64url" }),
});

export const TurnOut = z
  .object({
    username: z.string().meta({ description: '"<expiry unix seconds>:<account>.<device>"' }),
    credential: z.string().meta({ description: 'base64(HMAC-SHA1(shared secret, username))' }),
    ttl: z.number().int().meta({ description: 'seconds the credential stays valid' }),
    uris: z.array(z.string()).meta({ description: 'turn:/turns: URIs (RTCIceServer.urls)' }),
  })
  .meta({ id: 'TurnOut' });
