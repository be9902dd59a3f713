// The offline queue: acknowledgements and comments made without a network wait in IndexedDB and are sent
// when it returns. An acknowledgement carries the alarm version the user saw; if the alarm changed meanwhile
// the server answers 409 and the item is kept as a conflict for the user to resolve (ack again or discard).

import { api, ApiError, Offline } from "./api.js";

const DB_NAME = "ehs-pwa";
const STORE = "outbox";
let dbPromise = null;

function db() {
  dbPromise ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE, { keyPath: "id", autoIncrement: true });
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  return dbPromise;
}

async function tx(mode, fn) {
  const conn = await db();
  return new Promise((resolve, reject) => {
    const t = conn.transaction(STORE, mode);
    const result = fn(t.objectStore(STORE));
    t.oncomplete = () => resolve(result && "result" in result ? result.result : undefined);
    t.onerror = () => reject(t.error);
  });
}

export const all = () => tx("readonly", (s) => s.getAll());
export const put = (item) => tx("readwrite", (s) => s.put(item));
export const remove = (id) => tx("readwrite", (s) => s.delete(id));
export const add = (item) => tx("readwrite", (s) => s.add({ ...item, status: "pending", created_at: new Date().toISOString() }));

function request(item) {
  if (item.kind === "waste_entry") {
    return api(`/api/v1/hazwaste/containers/${item.container_id}/entries`, { method: "POST", json: item.entry });
  }
  const path = `/api/v1/alarms/${item.alarm_id}/${item.kind}`;
  if (item.kind === "comment") return api(path, { method: "POST", json: { text: item.text } });
  const json = { comment: item.comment || null };
  if (item.seen_version !== undefined && item.seen_version !== null) json.seen_version = item.seen_version;
  return api(path, { method: "POST", json });
}

/** Do it now, or queue it when offline. Returns {status: "done" | "queued" | "conflict", alarm?}. */
export async function submit(item) {
  try {
    const alarm = await request(item);
    return { status: "done", alarm };
  } catch (err) {
    if (err instanceof Offline) {
      await add(item);
      return { status: "queued" };
    }
    if (err instanceof ApiError && err.status === 409) return { status: "conflict", ...err.data };
    throw err;
  }
}

let flushing = null;

/** Send what ``user`` queued; returns how many were delivered. Conflicts stay (status "conflict") until resolved.
 *  Items of another user (this phone was signed in as someone else) are never sent under this user's name. */
export function flush(user) {
  flushing ??= (async () => {
    let sent = 0;
    try {
      for (const item of await all()) {
        if (item.status !== "pending" || item.user !== user) continue;
        try {
          await request(item);
          await remove(item.id);
          sent += 1;
        } catch (err) {
          if (err instanceof Offline) break;
          if (err instanceof ApiError && err.status === 409) {
            await put({ ...item, status: "conflict", code: err.data?.code, detail: err.data?.detail,
                        alarm: err.data?.alarm ?? null });
          } else if (err instanceof ApiError && err.status !== 401 && err.status < 500) {
            await put({ ...item, status: "failed", detail: err.message });
          } else break;   // signed out or the server is unwell: try again later
        }
      }
    } finally {
      flushing = null;
    }
    return sent;
  })();
  return flushing;
}
