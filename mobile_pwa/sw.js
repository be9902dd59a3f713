// Service worker of the PWA (scope /app/): the app shell and the recent alarms stay available offline,
// and Web Push notifications are shown with an "Acknowledge" action.

const VERSION = "ehs-pwa-7";
const SHELL = `${VERSION}-shell`;
const DATA = `${VERSION}-data`;
const SHELL_FILES = [
  "/app/", "/app/manifest.webmanifest", "/app/css/app.css",
  "/app/js/app.js", "/app/js/api.js", "/app/js/alarms.js", "/app/js/chart.js", "/app/js/dom.js", "/app/js/i18n.js",
  "/app/js/live.js", "/app/js/outbox.js", "/app/js/push.js", "/app/js/sound.js", "/app/js/reports.js",
  "/app/js/waste.js", "/app/js/compliance.js", "/app/js/energy.js", "/app/js/echarts.js",
  "/app/vendor/echarts/echarts.min.js",
  "/app/i18n/zh-CN.json", "/app/i18n/en.json",
  "/app/icons/icon-192.png", "/app/icons/icon-512.png", "/app/icons/maskable-512.png",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((c) => c.addAll(SHELL_FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (!name.startsWith(VERSION)) await caches.delete(name);
    await self.clients.claim();
  })());
});

/** Network first (fresh code and data when online), the cached copy when offline. */
async function networkFirst(request, cacheName, key = request) {
  const cache = await caches.open(cacheName);
  try {
    const resp = await fetch(request);
    if (resp.ok) await cache.put(key, resp.clone());
    return resp;
  } catch (err) {
    const hit = await cache.match(key, { ignoreVary: true });
    if (hit) return hit;
    throw err;
  }
}

self.addEventListener("fetch", (event) => {
  const req = event.request;
  const url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/app/")) {
    // a navigation to any /app/ page is the shell (routes live in the hash)
    const key = req.mode === "navigate" ? "/app/" : url.pathname;
    event.respondWith(networkFirst(req, SHELL, key));
  } else if (url.pathname.startsWith("/api/v1/alarms")) {
    event.respondWith(networkFirst(req, DATA));
  }
});

self.addEventListener("push", (event) => {
  let data = {};
  try { data = event.data ? event.data.json() : {}; } catch { data = { title: event.data?.text() }; }
  const en = (data.lang || "").startsWith("en");
  const actions = data.link_token ? [{ action: "ack", title: en ? "Acknowledge" : "确认" }] : [];
  event.waitUntil((async () => {
    await self.registration.showNotification(data.title || "EHS", {
      body: data.body || "", tag: data.alarm_id ? `alarm-${data.alarm_id}` : undefined, renotify: true,
      requireInteraction: (data.priority || 0) >= 4, icon: "/app/icons/icon-192.png", badge: "/app/icons/icon-192.png",
      data, actions,
    });
    for (const c of await self.clients.matchAll({ type: "window" })) c.postMessage({ type: "alarm", alarm_id: data.alarm_id });
  })());
});

self.addEventListener("notificationclick", (event) => {
  const data = event.notification.data || {};
  event.notification.close();
  if (event.action === "ack" && data.link_token) {
    event.waitUntil(fetch(`/api/v1/links/${encodeURIComponent(data.link_token)}/ack`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: "{}",
    }).catch(() => self.clients.openWindow(data.url || "/app/")));
    return;
  }
  event.waitUntil((async () => {
    const url = data.url || "/app/";
    for (const c of await self.clients.matchAll({ type: "window" })) {
      if (new URL(c.url).pathname.startsWith("/app/") && "navigate" in c) { await c.focus(); return c.navigate(url); }
    }
    return self.clients.openWindow(url);
  })());
});
