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

/** Shows a notification that says nothing about the message: no sender, no text. */
async function showContentFree(): Promise<void> {
  const open = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  if (open.some((c) => (c as WindowClient).visibilityState === 'visible')) return;
  await self.registration.showNotification('GChat', { body: 'New message', tag: 'gchat-new-message', icon: '/icons/icon-192.png' });
}

self.addEventListener('push', (ev) => ev.waitUntil(showContentFree()));

self.addEventListener('message', (ev) => {
  if ((ev.data as { t?: string } | null)?.t === 'test-notification') ev.waitUntil(self.registration.showNotification('GChat', { body: 'Notifications are on', tag: 'gchat-test' }));
});

self.addEventListener('notificationclick', (ev) => {
  ev.notification.close();
  ev.waitUntil(
    self.clients.matchAll({ type: 'window' }).then((list) => {
      const tab = list[0] as WindowClient | undefined;
      return tab ? tab.focus() : self.clients.openWindow('/');
    }),
  );
});
