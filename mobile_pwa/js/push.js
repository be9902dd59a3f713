// Web Push: subscribe this device with the server's VAPID key (the service worker shows the notifications,
// with an "Acknowledge" action). Hidden when the server has no push support (vapid-public-key answers 404).

import { api, ApiError } from "./api.js";

const SUB_KEY = "ehs.push.id";

function keyBytes(base64url) {
  const pad = "=".repeat((4 - (base64url.length % 4)) % 4);
  const bin = atob((base64url + pad).replace(/-/g, "+").replace(/_/g, "/"));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

async function vapidKey() {
  try { return (await api("/api/v1/push/vapid-public-key")).public_key; }
  catch (err) { if (err instanceof ApiError && (err.status === 404 || err.status === 503)) return null; throw err; }
}

export async function status() {
  if (!("serviceWorker" in navigator) || !("PushManager" in window)) return { available: false };
  let key;
  try { key = await vapidKey(); } catch { return { available: false }; }
  if (!key) return { available: false };
  // no service worker (it failed to register): no push on this device, rather than waiting forever
  const reg = await Promise.race([navigator.serviceWorker.ready, new Promise((ok) => setTimeout(() => ok(null), 5000))]);
  if (!reg) return { available: false };
  const sub = await reg.pushManager.getSubscription();
  return { available: true, subscribed: Boolean(sub && localStorage.getItem(SUB_KEY)), key };
}

export async function subscribe(lang) {
  const key = await vapidKey();
  if (await Notification.requestPermission() !== "granted") throw new Error("permission denied");
  const reg = await navigator.serviceWorker.ready;
  const sub = await reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key) });
  const saved = await api("/api/v1/push/subscriptions", { method: "POST", json: { ...sub.toJSON(), lang } });
  localStorage.setItem(SUB_KEY, String(saved.id));
}

export async function unsubscribe() {
  const reg = await navigator.serviceWorker.ready;
  const sub = await reg.pushManager.getSubscription();
  const id = localStorage.getItem(SUB_KEY);
  if (id) {
    try { await api(`/api/v1/push/subscriptions/${id}`, { method: "DELETE" }); }
    catch (err) { if (!(err instanceof ApiError && err.status === 404)) throw err; }
  }
  localStorage.removeItem(SUB_KEY);
  if (sub) await sub.unsubscribe();
}
