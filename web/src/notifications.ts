/**
 * Notifications seam. The service worker can already show content-free notifications; what is
 * missing is the server side of Web Push (the push issue). Until the server advertises it, the
 * settings say "unavailable" instead of asking for a permission that would do nothing.
 */
export type NotificationState = 'unavailable' | 'unsupported' | 'denied' | 'off' | 'on';

/** Where the server says it offers Web Push (its VAPID key); absent on servers without push. */
const PUSH_INFO = '/v1/push/web';

export async function serverOffersPush(): Promise<boolean> {
  try {
    const res = await fetch(PUSH_INFO, { headers: { accept: 'application/json' } });
    return res.ok;
  } catch {
    return false;
  }
}

export async function notificationState(): Promise<NotificationState> {
  if (!('Notification' in globalThis) || !('serviceWorker' in navigator)) return 'unsupported';
  if (!(await serverOffersPush())) return 'unavailable';
  if (Notification.permission === 'denied') return 'denied';
  return Notification.permission === 'granted' ? 'on' : 'off';
}

/** Asks for permission; subscribing to the server's push comes with the push task. */
export async function enableNotifications(): Promise<NotificationState> {
  if ((await notificationState()) === 'unavailable') return 'unavailable';
  const p = await Notification.requestPermission();
  return p === 'granted' ? 'on' : p === 'denied' ? 'denied' : 'off';
}
