/**
 * The service worker: serves the app shell from its cache when the network is gone (the API and
 * the stream are never cached), and shows content-free notifications: a push says only that
 * something arrived; the page decrypts, the worker never sees a message.
 */
/// <reference lib="webworker" />
declare const __SHELL__: string[];
declare const __VERSION__: string;
declare const self: ServiceWorkerGlobalScope;

const CACHE = `gchat-shell-${__VERSION__}`;

self.addEventListener('install', (ev) => {
  ev.waitUntil(
    caches
      .open(CACHE)
      .then((c) => c.addAll(__SHELL__))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener('activate', (ev) => {
  ev.waitUntil(
    caches
      .keys()
      .then((names) => Promise.all(names.filter((n) => n.startsWith('gchat-shell-') && n !== CACHE).map((n) => caches.delete(n))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener('fetch', (ev) => {
  const url = new URL(ev.request.url);
  if (ev.request.method !== 'GET' || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith('/v1/') || url.pathname === '/healthz' || url.pathname === '/metrics') return;
  const shellPath = url.pathname === '/' || url.pathname === '/index.html' ? '/' : url.pathname;
  if (!__SHELL__.includes(shellPath)) return;
  // Network first for the page (a new version shows at once), cache when offline; assets are hashed: cache first.
  if (shellPath === '/') {
    ev.respondWith(
      fetch(ev.request)
        .then((res) => {
          const copy = res.clone();
          if (res.ok) void caches.open(CACHE).then((c) => c.put('/', copy));
          return res;
        })
        .catch(async () => (await caches.match('/')) ?? Response.error()),
    );
  } else {
    ev.respondWith(caches.match(shellPath).then((hit) => hit ?? fetch(ev.request)));
  }
});

/**
 * Shows a notification that says nothing about the message: no sender, no text. The payload (the
 * server's `{ v, kind }`) picks only between two fixed texts; anything else in it is ignored.
 * Chrome requires a notification for every push (userVisibleOnly); the server pushes only to a
 * device without a live connection, so a visible tab seldom sees one; then it is silent.
 */
async function showContentFree(kind: 'wake' | 'call'): Promise<void> {
  const open = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const visible = open.some((c) => (c as WindowClient).visibilityState === 'visible');
  await self.registration.showNotification('GChat', {
    body: kind === 'call' ? 'Incoming call' : 'New message',
    tag: kind === 'call' ? 'gchat-call' : 'gchat-new-message',
    icon: '/icons/icon-192.png',
    silent: visible,
  });
}

function pushKind(ev: PushEvent): 'wake' | 'call' {
  try {
    return (ev.data?.json() as { kind?: unknown } | undefined)?.kind === 'call' ? 'call' : 'wake';
  } catch {
    return 'wake';
  }
}

self.addEventListener('push', (ev) => ev.waitUntil(showContentFree(pushKind(ev))));

self.addEventListener('message', (ev) => {
  if ((ev.data as { t?: string } | null)?.t === 'test-notification') ev.waitUntil(self.registration.showNotification('GChat', { body: 'Notifications are on', tag: 'gchat-test' }));
});

/** A click brings GChat's window forward, or opens one at the app (the notification names no conversation). */
async function focusOrOpenApp(): Promise<void> {
  const list = (await self.clients.matchAll({ type: 'window', includeUncontrolled: true })) as WindowClient[];
  const tab = list.find((c) => new URL(c.url).origin === self.location.origin);
  if (tab) await tab.focus();
  else await self.clients.openWindow('/');
}

self.addEventListener('notificationclick', (ev) => {
  ev.notification.close();
  ev.waitUntil(focusOrOpenApp());
});
