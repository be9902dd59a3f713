// The HTTP API client: bearer tokens (signed-in users, refreshed before they expire) or a viewer API key
// (the unattended control-room screen). Errors carry the status and the JSON body.

const AUTH_KEY = "ehs.auth";
const SCREEN_KEY = "ehs.screen.key";

export class ApiError extends Error {
  constructor(status, data) {
    super((data && typeof data.detail === "string" && data.detail) || `HTTP ${status}`);
    this.status = status;
    this.data = data;
  }
}

export class Offline extends Error {}

export const session = {
  get() {
    try { return JSON.parse(localStorage.getItem(AUTH_KEY)) || null; } catch { return null; }
  },
  set(tokens) {
    const now = Date.now();
    localStorage.setItem(AUTH_KEY, JSON.stringify({
      access_token: tokens.access_token, refresh_token: tokens.refresh_token,
      expires_at: now + tokens.expires_in * 1000, refresh_expires_at: now + tokens.refresh_expires_in * 1000,
    }));
  },
  clear() { localStorage.removeItem(AUTH_KEY); },
  apiKey() { return localStorage.getItem(SCREEN_KEY); },
  setApiKey(key) { key ? localStorage.setItem(SCREEN_KEY, key) : localStorage.removeItem(SCREEN_KEY); },
};

let refreshing = null;

async function refresh() {
  const current = session.get();
  if (!current || !current.refresh_token) return false;
  refreshing ??= (async () => {
    try {
      const resp = await fetch("/api/v1/auth/refresh", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: current.refresh_token }),
      });
      if (resp.ok) { session.set(await resp.json()); return true; }
      if (resp.status === 401) session.clear();
      return false;
    } finally { refreshing = null; }
  })();
  return refreshing;
}

/** A current access token (refreshed when it expires within a minute), or null when signed out. */
export async function accessToken() {
  const current = session.get();
  if (!current) return null;
  if (current.expires_at - Date.now() < 60_000) {
    try { await refresh(); } catch { /* offline: use what we have */ }
  }
  return session.get()?.access_token ?? null;
}

/** The first WebSocket message: the viewer key of the screen, or the user's access token. */
export async function wsCredentials() {
  const key = session.apiKey();
  if (key) return { type: "auth", api_key: key };
  const token = await accessToken();
  return token ? { type: "auth", token } : null;
}

async function headers(extra) {
  const out = { Accept: "application/json", ...extra };
  const key = session.apiKey();
  if (key) out["X-API-Key"] = key;
  else {
    const token = await accessToken();
    if (token) out.Authorization = `Bearer ${token}`;
  }
  return out;
}

/** Call the API; JSON in and out. Throws Offline when the network is down, ApiError for HTTP errors. */
export async function api(path, { method = "GET", json, form, retry = true } = {}) {
  const extra = {};
  let body;
  if (json !== undefined) { extra["Content-Type"] = "application/json"; body = JSON.stringify(json); }
  if (form !== undefined) body = new URLSearchParams(form);
  let resp;
  try {
    resp = await fetch(path, { method, headers: await headers(extra), body });
  } catch (err) {
    throw new Offline(String(err));
  }
  if (resp.status === 401 && retry && !session.apiKey() && await refresh()) {
    return api(path, { method, json, form, retry: false });
  }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text }; }
  if (!resp.ok) {
    if (resp.status === 401 && !path.startsWith("/api/v1/auth/")) {
      window.dispatchEvent(new CustomEvent("ehs:signed-out"));
    }
    throw new ApiError(resp.status, data);
  }
  return data;
}

/** Lists are either bare JSON arrays or pages ({"items", "next"}): follow pages up to ``max`` rows. */
export async function list(path, max = 1000) {
  const out = [];
  let url = path;
  for (;;) {
    const data = await api(url);
    if (Array.isArray(data)) return data;
    out.push(...(data.items || []));
    if (!data.next || out.length >= max) return out;
    url = path + (path.includes("?") ? "&" : "?") + "after=" + encodeURIComponent(data.next);
  }
}

export async function signIn(username, password, totp) {
  const form = { username, password, grant_type: "password" };
  if (totp) form.totp = totp;
  const tokens = await api("/api/v1/auth/token", { method: "POST", form, retry: false });
  session.set(tokens);
  return tokens;
}

export async function signOut() {
  const current = session.get();
  session.clear();
  if (current?.refresh_token) {
    try {
      await fetch("/api/v1/auth/logout", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ refresh_token: current.refresh_token }),
      });
    } catch { /* offline: the session expires on its own */ }
  }
}
