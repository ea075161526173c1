/**
 * Notifications: when the user allows them and the server offers Web Push (it publishes a VAPID
 * key), the service worker subscribes and the page registers the subscription for this device.
 * Pushes wake the worker without content; it shows only "New message" or "Incoming call".
 */
export type NotificationState = 'unavailable' | 'unsupported' | 'denied' | 'off' | 'on' | 'on-no-push';

/** The server's VAPID public key; absent on servers without push. */
const VAPID_KEY = '/v1/push/vapid';

/** Registers a browser subscription with the server for this device (GChatClient.registerWebPush). */
export type RegisterSubscription = (s: { endpoint: string; keys: { p256dh: string; auth: string } }) => Promise<void>;

export async function serverVapidKey(): Promise<string | null> {
  try {
    const res = await fetch(VAPID_KEY, { headers: { accept: 'application/json' } });
    if (!res.ok) return null;
    const key = ((await res.json()) as { public_key?: unknown }).public_key;
    return typeof key === 'string' && key ? key : null;
  } catch {
    return null;
  }
}

export async function serverOffersPush(): Promise<boolean> {
  return (await serverVapidKey()) !== null;
}

export async function notificationState(): Promise<NotificationState> {
  if (!('Notification' in globalThis) || !('serviceWorker' in navigator)) return 'unsupported';
  if (!(await serverOffersPush())) return 'unavailable';
  if (Notification.permission === 'denied') return 'denied';
  if (Notification.permission !== 'granted') return 'off';
  return (await currentSubscription()) ? 'on' : 'on-no-push';
}

/** Asks for permission, then subscribes and registers the subscription. */
export async function enableNotifications(register: RegisterSubscription): Promise<NotificationState> {
  if ((await notificationState()) === 'unavailable') return 'unavailable';
  const p = await Notification.requestPermission();
  if (p !== 'granted') return p === 'denied' ? 'denied' : 'off';
  return (await syncPushSubscription(register)) ? 'on' : 'on-no-push';
}

async function currentSubscription(): Promise<PushSubscription | null> {
  if (!('PushManager' in globalThis)) return null;
  const reg = await navigator.serviceWorker.getRegistration('/');
  return (await reg?.pushManager.getSubscription()) ?? null;
}

function keyBytes(base64url: string): Uint8Array<ArrayBuffer> {
  const b64 = base64url.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
}

function sameKey(a: ArrayBuffer | null, b: Uint8Array): boolean {
  if (!a || a.byteLength !== b.length) return false;
  const x = new Uint8Array(a);
  return x.every((v, i) => v === b[i]);
}

/**
 * With permission granted and push offered: makes sure the worker holds a subscription under the
 * server's key and the server knows it (run at every start: subscriptions expire and rotate).
 * False when the browser could not subscribe (e.g. its vendor's push service is unreachable).
 */
export async function syncPushSubscription(register: RegisterSubscription): Promise<boolean> {
  if (!('Notification' in globalThis) || Notification.permission !== 'granted' || !('serviceWorker' in navigator) || !('PushManager' in globalThis)) return false;
  const key = await serverVapidKey();
  if (!key) return false;
  try {
    const reg = await navigator.serviceWorker.ready;
    const server = keyBytes(key);
    let sub = await reg.pushManager.getSubscription();
    if (sub && !sameKey(sub.options.applicationServerKey, server)) {
      await sub.unsubscribe();
      sub = null;
    }
    sub ??= await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: server });
    const json = sub.toJSON();
    if (!json.endpoint || !json.keys?.p256dh || !json.keys.auth) return false;
    await register({ endpoint: json.endpoint, keys: { p256dh: json.keys.p256dh, auth: json.keys.auth } });
    return true;
  } catch {
    return false;
  }
}
