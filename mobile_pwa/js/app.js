// The PWA: sign-in, alarm inbox, alarm detail (timeline, chart, response plan, ack/shelve/comment), areas with
// live values, settings (language, sound, notifications, Web Push). Hash routes: #/alarms, #/alarms/17,
// #/areas, #/areas/3, #/settings, #/login; hazardous-waste containers #/waste, #/waste/containers/17 (waste.js);
// the compliance overview #/compliance (compliance.js), where regulators land after sign-in;
// energy per process #/energy and its ledger #/energy/ledger (energy.js).

import { alarmTitle, isActive, needsAck, PRIORITY_CLASS, priorityName, sortAlarms, sounding, stateName } from "./alarms.js";
import { api, ApiError, list, Offline, session, signIn, signOut, wsCredentials } from "./api.js";
import { lineChart } from "./chart.js";
import { renderCompliance } from "./compliance.js";
import { html, raw } from "./dom.js";
import { resizeCharts } from "./echarts.js";
import { renderEnergy, renderLedger } from "./energy.js";
import { currentLang, formatTime, LANGS, loadLang, pick, setLang, t } from "./i18n.js";
import { connectLive } from "./live.js";
import * as outbox from "./outbox.js";
import * as push from "./push.js";
import { renderReports } from "./reports.js";
import * as sound from "./sound.js";
import { renderContainer, renderScan } from "./waste.js";

const view = document.getElementById("view");
const state = { me: null, alarms: [], alarmsAt: null, live: null, liveStatus: "offline", pending: [], area: null,
                values: new Map(), detail: null };

const SPEAKER = '<svg viewBox="0 0 24 24" width="26" height="26" aria-hidden="true" fill="none" stroke="currentColor" '
  + 'stroke-width="2" stroke-linecap="round"><path d="M4 9h4l5-4v14l-5-4H4z" fill="currentColor"/>';
const WAVES = '<path d="M16 8.5a5 5 0 0 1 0 7M18.5 6a8.5 8.5 0 0 1 0 12"/>';
const MUTED = '<path d="M16 9l6 6M22 9l-6 6"/>';
const UNITS = { a: "A", c: "°C", pct: "%", m3: "m³", m3_h: "m³/h", nm3: "Nm³", nm3_h: "Nm³/h", bool: "", ph: "", mg_l: "mg/L",
  mg_m3: "mg/m³", pct_obs_m: "%obs/m", mm_s: "mm/s", mpa: "MPa", pa: "Pa", kwh: "kWh", v: "V" };
const eventName = (kind) => (t(`event.${kind}`) === `event.${kind}` ? kind.replace(/_/g, " ") : t(`event.${kind}`));
const unit = (u) => (u in UNITS ? UNITS[u] : u);

// ---- shell ---------------------------------------------------------------------------------------------------

function renderShell() {
  document.title = t("app.title");
  document.getElementById("app-title").textContent = t("app.title");
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  const mute = document.getElementById("mute");
  mute.innerHTML = SPEAKER + (sound.isMuted() ? MUTED : WAVES) + "</svg>";
  mute.setAttribute("aria-label", t(sound.isMuted() ? "sound.unmute" : "sound.mute"));
  renderStatus();
}

function renderStatus() {
  const el = document.getElementById("net");
  const online = navigator.onLine;
  const queued = state.pending.filter((p) => p.status === "pending").length;
  el.className = `net ${online ? state.liveStatus : "offline"}`;
  el.textContent = (online ? t(`net.${state.liveStatus}`) : t("net.offline")) + (queued ? ` · ${t("outbox.queued", { n: queued })}` : "");
  document.body.classList.toggle("signed-in", Boolean(state.me));
  document.getElementById("nav-reports").hidden = !state.me?.permissions?.includes("reports.read");
  document.getElementById("nav-compliance").hidden = !state.me?.permissions?.includes("compliance.read");
  document.getElementById("nav-energy").hidden = !state.me?.permissions?.includes("energy.read");
}

function route() {
  const [path, query] = location.hash.slice(1).split("?");
  const parts = path.split("/").filter(Boolean);
  if (!parts.length) parts.push(isRegulator() ? "compliance" : "alarms");      // the home tab of the role
  return { parts, params: new URLSearchParams(query || "") };
}

// A regulator's home is the compliance overview; everyone else's the alarm inbox.
const isRegulator = () => state.me?.role === "regulator";

function highlight(parts) {
  for (const a of document.querySelectorAll("nav.bottom a")) {
    a.classList.toggle("current", a.dataset.tab === parts[0]);
  }
}

function go(hash) { if (location.hash !== hash) location.hash = hash; else render(); }

async function render() {
  let { parts, params } = route();
  highlight(parts);
  if (parts[0] === "alarms" && parts[1] && params.get("t") && !session.get()) return renderLink(params.get("t"));
  if (!session.get()) return renderLogin();
  if (!state.me) {
    await loadMe(); await loadAreaNames(); renderStatus();
    ({ parts, params } = route());                  // the home tab depends on the role
    highlight(parts);
  }
  if (!state.live) startLive();
  if (parts[0] === "alarms" && parts[1]) return renderDetail(Number(parts[1]));
  if (parts[0] === "areas" && parts[1]) return renderArea(Number(parts[1]));
  if (parts[0] === "areas") return renderAreas();
  if (parts[0] === "settings") return renderSettings();
  if (parts[0] === "reports") return renderReports(view);
  if (parts[0] === "compliance") return renderCompliance(view, params);
  if (parts[0] === "waste") return renderWaste(parts);
  if (parts[0] === "energy" && parts[1] === "ledger") return renderLedger({ view }, params);
  if (parts[0] === "energy") return renderEnergy({ view, me: state.me }, params);
  return renderInbox();
}

// ---- sign-in -------------------------------------------------------------------------------------------------

function renderLogin(needTotp = false, error = "") {
  view.innerHTML = html`
    <form class="card login" id="login">
      <h2>${t("login.title")}</h2>
      <label>${t("login.username")}<input name="username" autocomplete="username" required autocapitalize="off"></label>
      <label>${t("login.password")}<input name="password" type="password" autocomplete="current-password" required></label>
      ${needTotp ? html`<label>${t("login.totp")}<input name="totp" inputmode="numeric" autocomplete="one-time-code"
        pattern="[0-9]{6,8}" required autofocus></label>` : ""}
      <p class="error" role="alert">${error}</p>
      <button class="primary big" type="submit">${t("login.submit")}</button>
    </form>`.text;
  const form = document.getElementById("login");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    try {
      await signIn(data.get("username"), data.get("password"), data.get("totp"));
      state.me = null;
      localStorage.removeItem("ehs.me");
      go("#/");
    } catch (err) {
      if (err instanceof ApiError && err.data?.mfa_required) {
        renderLogin(true, data.get("totp") ? t("login.failed") : "");
        document.querySelector("#login [name=username]").value = data.get("username");
        document.querySelector("#login [name=password]").value = data.get("password");
      } else {
        renderLogin(needTotp, err instanceof Offline ? t("net.offline") : t("login.failed"));
      }
    }
  });
}

async function loadMe() {
  try { state.me = await api("/api/v1/auth/me"); localStorage.setItem("ehs.me", JSON.stringify(state.me)); }
  catch (err) {
    if (!(err instanceof Offline)) throw err;
    state.me = JSON.parse(localStorage.getItem("ehs.me") || "null") || { name: "", permissions: [] };
  }
}

/** Area names for the alarm rows (kept for offline use). */
async function loadAreaNames() {
  try {
    const areas = await list("/api/v1/areas?limit=500", 2000);
    state.areaNames = Object.fromEntries(areas.map((a) => [`${a.site}/${a.code}`, { name: a.name, name_en: a.name_en }]));
    localStorage.setItem("ehs.areas", JSON.stringify(state.areaNames));
  } catch {
    state.areaNames = JSON.parse(localStorage.getItem("ehs.areas") || "{}");
  }
}

const areaName = (a) => pick(state.areaNames?.[`${a.site}/${a.area}`], "name") || a.area || "";

const may = (permission) => (state.me?.permissions || []).includes(permission);

// ---- alarms: data and live updates ----------------------------------------------------------------------------

let reloadTimer = null;

async function loadAlarms() {
  try {
    state.alarms = await list("/api/v1/alarms?open=true&limit=200", 200);
    state.alarmsAt = new Date();
  } catch (err) {
    if (!(err instanceof Offline)) throw err;
  }
  sound.alarm(sounding(state.alarms).length > 0);
}

function scheduleReload() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(async () => {
    await loadAlarms();
    const { parts } = route();
    if (parts[0] === "alarms" && !parts[1]) renderInbox(false);
    if (parts[0] === "alarms" && parts[1] && state.detail && Number(parts[1]) === state.detail.id && !editing()) {
      renderDetail(state.detail.id);
    }
  }, 300);
}

/** The user is typing (a comment, a shelving reason): do not redraw the detail under their fingers. */
function editing() {
  const el = document.activeElement;
  const typing = el && view.contains(el) && ["INPUT", "SELECT", "TEXTAREA"].includes(el.tagName);
  const shelving = document.getElementById("shelve-form") && !document.getElementById("shelve-form").classList.contains("hidden");
  const drafted = [...view.querySelectorAll("#comment-form input, #shelve-form input")].some((i) => i.value);
  return Boolean(typing || shelving || drafted);
}

function startLive() {
  state.live = connectLive({
    credentials: wsCredentials,
    subscription: () => ({ alarms: "*", ...(state.area ? { areas: [state.area] } : {}) }),
    onStatus: (s) => { state.liveStatus = s; renderStatus(); },
    onMessage: (msg) => {
      if (msg.type === "alarm" || msg.type === "gap") scheduleReload();
      if (msg.type === "welcome") scheduleReload();
      if (msg.type === "readings") {
        for (const r of msg.items) state.values.set(r.point_id, r);
        updateValues();
      }
    },
  });
}

// ---- inbox ---------------------------------------------------------------------------------------------------

function alarmRow(a) {
  const cls = [PRIORITY_CLASS[a.priority], needsAck(a) ? "unacked" : "acked", isActive(a) ? "active" : "cleared"];
  return html`
    <li><a class="alarm ${cls.join(" ")}" href="#/alarms/${a.id}" data-alarm-id="${a.id}" data-state="${a.state}">
      <span class="prio" title="${priorityName(a.priority)}">${priorityName(a.priority)}</span>
      <span class="body">
        <span class="title">${alarmTitle(a)}${a.drill ? html` <em class="drill">${t("alarm.drill")}</em>` : ""}</span>
        <span class="meta">${areaName(a)} · ${a.device || ""} · ${formatTime(a.last_raised_at || a.raised_at || a.opened_at, true)}</span>
      </span>
      <span class="state">${stateName(a)}</span>
    </a></li>`;
}

function conflictsBanner(alarmId = null) {
  const items = state.pending.filter((p) => (p.status === "conflict" || p.status === "failed")
    && (alarmId === null || p.alarm_id === alarmId));
  if (!items.length) return "";
  return html`<section class="card conflicts"><h3>${t("outbox.conflicts")}</h3><ul>${items.map((p) => html`
    <li data-outbox-id="${p.id}">
      <p>${t(`outbox.kind.${p.kind}`)} #${p.alarm_id}: ${p.code === "alarm_changed" ? t("outbox.changed") : p.detail || ""}
        ${p.alarm ? html`<br>${t("outbox.now", { state: stateName(p.alarm) })}` : ""}</p>
      ${p.status === "conflict" && p.kind === "ack" && p.alarm && needsAck(p.alarm)
        ? html`<button class="primary" data-retry="${p.id}">${t("outbox.ack_again")}</button>` : ""}
      <a class="button" href="${p.container_id ? `#/waste/containers/${p.container_id}` : `#/alarms/${p.alarm_id}`}">${t("outbox.open")}</a>
      <button data-discard="${p.id}">${t("outbox.discard")}</button>
    </li>`)}</ul></section>`;
}

function bindConflicts() {
  for (const b of view.querySelectorAll("[data-discard]")) {
    b.addEventListener("click", async () => { await outbox.remove(Number(b.dataset.discard)); await refreshPending(); render(); });
  }
  for (const b of view.querySelectorAll("[data-retry]")) {
    b.addEventListener("click", async () => {
      const item = state.pending.find((p) => p.id === Number(b.dataset.retry));
      await outbox.put({ ...item, status: "pending", seen_version: null, alarm: null, code: null });
      await refreshPending();
      await flushOutbox();
      render();
    });
  }
}

async function renderInbox(fetch = true) {
  if (fetch) await loadAlarms();
  const alarms = sortAlarms(state.alarms);
  const unacked = alarms.filter(needsAck).length;
  view.innerHTML = html`
    ${conflictsBanner()}
    <section class="inbox">
      <h2>${t("inbox.title")} <span class="count">${t("inbox.summary", { n: alarms.length, u: unacked })}</span></h2>
      ${state.alarmsAt ? "" : html`<p class="muted">${t("inbox.cached")}</p>`}
      ${alarms.length ? html`<ul class="alarms" id="alarm-list">${alarms.map(alarmRow)}</ul>`
                      : html`<p class="empty">${t("inbox.empty")}</p>`}
    </section>`.text;
  bindConflicts();
}

// ---- detail --------------------------------------------------------------------------------------------------

async function renderDetail(id) {
  let alarm;
  try { alarm = await api(`/api/v1/alarms/${id}`); }
  catch (err) {
    if (err instanceof Offline) alarm = state.detail?.id === id ? state.detail : state.alarms.find((a) => a.id === id);
    else if (err instanceof ApiError && err.status === 404) { view.innerHTML = html`<p class="card">${t("alarm.not_found")}</p>`.text; return; }
    else throw err;
    if (!alarm) { view.innerHTML = html`<p class="card">${t("net.offline")}</p>`.text; return; }
  }
  state.detail = alarm;
  const pending = state.pending.filter((p) => p.alarm_id === id);
  const queuedAck = pending.some((p) => p.kind === "ack" && p.status === "pending");
  const canAck = needsAck(alarm) && may("alarms.ack") && !queuedAck;
  const cls = `${PRIORITY_CLASS[alarm.priority]} ${needsAck(alarm) ? "unacked" : "acked"}`;
  view.innerHTML = html`
    <article class="detail" data-alarm-id="${alarm.id}" data-state="${alarm.state}">
      <header class="card alarm-head ${cls}">
        <span class="prio">${priorityName(alarm.priority)}</span>
        <h2>${alarmTitle(alarm)}${alarm.drill ? html` <em class="drill">${t("alarm.drill")}</em>` : ""}</h2>
        <p class="state-line"><strong id="alarm-state">${stateName(alarm)}</strong>
          ${alarm.level ? html` · ${alarm.level}` : ""}${alarm.value !== null && alarm.value !== undefined ? html` · ${t("alarm.value")} ${alarm.value}` : ""}</p>
        <p class="meta">${alarm.site} · ${areaName(alarm)} · ${alarm.device || ""} ${alarm.point || ""}</p>
        <p class="meta">${t("alarm.raised")} ${formatTime(alarm.raised_at, true)}
          ${alarm.acked_at ? html` · ${t("alarm.acked_by", { who: alarm.acked_by || "", at: formatTime(alarm.acked_at, true) })}` : ""}
          ${alarm.shelved_until ? html` · ${t("alarm.shelved_until", { at: formatTime(alarm.shelved_until, true) })}` : ""}</p>
        ${alarm.first_out ? html`<p class="badge first-out">${t("alarm.first_out")}</p>` : ""}
      </header>
      ${conflictsBanner(alarm.id)}
      ${pending.length ? html`<p class="card queued" id="queued">${pending.map((p) => html`<span>${t(`outbox.kind.${p.kind}`)}: ${t(`outbox.status.${p.status}`)}</span> `)}</p>` : ""}
      <section class="actions">
        ${canAck ? html`<button class="primary big" id="ack">${t("action.ack")}</button>` : ""}
        ${may("alarms.shelve") && alarm.state !== "shelved" && alarm.state !== "normal" ? html`<button class="big" id="shelve-open">${t("action.shelve")}</button>` : ""}
        ${may("alarms.shelve") && alarm.state === "shelved" ? html`<button class="big" id="unshelve">${t("action.unshelve")}</button>` : ""}
      </section>
      <p class="error" role="alert" id="action-error"></p>
      <form class="card hidden" id="shelve-form">
        <label>${t("shelve.reason")}<input name="reason" required maxlength="500"></label>
        <label>${t("shelve.minutes")}<select name="minutes">
          ${[15, 30, 60, 120, 240, 480].map((m) => html`<option value="${m}" ${m === 60 ? raw("selected") : ""}>${t("shelve.for", { m })}</option>`)}
        </select></label>
        <button class="primary big" type="submit">${t("action.shelve")}</button>
      </form>
      ${planSection(alarm.plan)}
      <section class="card"><h3>${t("alarm.chart")}</h3><div id="chart"><p class="muted">…</p></div></section>
      ${commandsSection(alarm.commands || [])}
      <section class="card"><h3>${t("alarm.timeline")}</h3>
        <ol class="timeline">${(alarm.events || []).slice().reverse().map((e) => html`
          <li><time>${formatTime(e.at, true)}</time> <strong>${eventName(e.kind)}</strong>
            ${e.to_state ? html` → ${t(`state.${e.to_state}`)}` : ""}
            <span class="muted">${e.actor}</span>${e.cause ? html`<br><span>${e.cause}</span>` : ""}</li>`)}
        </ol>
        ${may("alarms.comment") ? html`<form id="comment-form" class="inline">
          <input name="text" required maxlength="2000" placeholder="${t("comment.placeholder")}">
          <button type="submit">${t("action.comment")}</button></form>` : ""}
      </section>
    </article>`.text;
  bindConflicts();
  bindDetail(alarm);
  loadChart(alarm);
}

function planSection(plan) {
  if (!plan) return "";
  const evac = plan.evacuation;
  const text = evac && (currentLang() === "en" ? (evac.en || evac.zh) : (evac.zh || evac.en));
  const action = pick(plan, "operator_action");
  return html`<section class="card plan"><h3>${t("plan.title")}: ${pick(plan, "name")}</h3>
    <p><strong>${pick(plan, "level_name")}</strong></p>
    ${action ? html`<p><strong>${t("plan.action")}</strong> ${action}</p>` : ""}
    ${text ? html`<p class="evacuation"><strong>${t("plan.evacuation")}</strong> ${text}</p>` : ""}
    ${evac?.route ? html`<p><strong>${t("plan.route")}</strong> ${pick(evac, "route")}</p>` : ""}
    ${evac?.assembly_point ? html`<p><strong>${t("plan.assembly")}</strong> ${pick(evac, "assembly_point")}</p>` : ""}
    ${(plan.interlocks || []).length ? html`<p><strong>${t("plan.interlocks")}</strong></p><ul>${plan.interlocks.map((a) => html`<li>${a.device} · ${a.action}</li>`)}</ul>` : ""}
  </section>`;
}

function commandsSection(commands) {
  if (!commands.length) return "";
  return html`<section class="card"><h3>${t("alarm.commands")}</h3><ul class="commands">${commands.map((c) => html`
    <li class="cmd ${c.status}"><strong>${c.device}</strong> ${c.action} <span class="badge">${c.status}</span></li>`)}</ul></section>`;
}

function bindDetail(alarm) {
  const error = (msg) => { document.getElementById("action-error").textContent = msg; };
  const ack = document.getElementById("ack");
  if (ack) ack.addEventListener("click", async () => {
    ack.disabled = true;
    await act({ kind: "ack", alarm_id: alarm.id, seen_version: alarm.version ?? null }, error);
  });
  const shelveOpen = document.getElementById("shelve-open");
  const form = document.getElementById("shelve-form");
  if (shelveOpen) shelveOpen.addEventListener("click", () => form.classList.toggle("hidden"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    try {
      await api(`/api/v1/alarms/${alarm.id}/shelve`, { method: "POST", json: {
        reason: data.get("reason"), minutes: Number(data.get("minutes")), seen_version: alarm.version ?? null } });
      scheduleReload();
    } catch (err) { error(err instanceof Offline ? t("shelve.offline") : err.message); }
  });
  const unshelve = document.getElementById("unshelve");
  if (unshelve) unshelve.addEventListener("click", async () => {
    try { await api(`/api/v1/alarms/${alarm.id}/unshelve`, { method: "POST", json: {} }); scheduleReload(); }
    catch (err) { error(err instanceof Offline ? t("shelve.offline") : err.message); }
  });
  const comment = document.getElementById("comment-form");
  if (comment) comment.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    await act({ kind: "comment", alarm_id: alarm.id, text: new FormData(comment).get("text") }, error);
  });
}

async function act(action, error) {
  const item = { ...action, user: state.me?.name };
  try {
    const result = await outbox.submit(item);
    if (result.status === "conflict") {
      error(result.code === "alarm_changed" ? t("outbox.changed") : (result.detail || t("outbox.conflicts")));
      if (result.code === "alarm_changed") {
        await outbox.put({ ...item, status: "conflict", code: result.code, detail: result.detail, alarm: result.alarm,
                           created_at: new Date().toISOString() });
      }
    }
    await refreshPending();
    if (result.status === "done") await loadAlarms();
    renderDetail(item.alarm_id);
  } catch (err) {
    error(err.message);
  }
}

async function loadChart(alarm) {
  const box = document.getElementById("chart");
  try {
    const params = new URLSearchParams({ site: alarm.site, limit: "500" });
    const points = (await list(`/api/v1/points?${params}`, 2000))
      .filter((p) => p.device === alarm.device && (!alarm.point || p.key === alarm.point)).slice(0, 3);
    if (!points.length) { box.innerHTML = html`<p class="muted">${t("chart.none")}</p>`.text; return; }
    const raised = Date.parse(alarm.raised_at || alarm.opened_at);
    const start = new Date(raised - 15 * 60_000);
    const endAt = alarm.closed_at ? Date.parse(alarm.closed_at) + 5 * 60_000 : Date.now();
    const end = new Date(Math.max(endAt, raised + 60_000));
    const level = Number(String(alarm.level || "").split(" ").pop());
    const charts = [];
    for (const p of points) {
      const q = new URLSearchParams({ start: start.toISOString(), end: end.toISOString(), limit: "5000" });
      const data = await api(`/api/v1/points/${p.id}/readings?${q}`);
      const svg = lineChart(data.readings || [], { marker: raised, limit: Number.isFinite(level) && alarm.point ? level : undefined });
      charts.push(html`<figure><figcaption>${pick(p, "name")} ${unit(p.unit) ? `(${unit(p.unit)})` : ""}</figcaption>${svg || html`<p class="muted">${t("chart.none")}</p>`}</figure>`);
    }
    box.innerHTML = html`${charts}`.text;
  } catch (err) {
    box.innerHTML = html`<p class="muted">${err instanceof Offline ? t("net.offline") : err.message}</p>`.text;
  }
}

// ---- areas ---------------------------------------------------------------------------------------------------

async function renderAreas() {
  setArea(null);
  let areas = [];
  try { areas = await list("/api/v1/areas?limit=500", 2000); } catch (err) { if (!(err instanceof Offline)) throw err; }
  const worstBy = new Map();
  for (const a of state.alarms) {
    const key = `${a.site}/${a.area}`;
    if (a.state !== "normal" && (!worstBy.has(key) || worstBy.get(key) < a.priority)) worstBy.set(key, a.priority);
  }
  view.innerHTML = html`<h2>${t("areas.title")}</h2><ul class="areas">${areas.map((a) => {
    const p = worstBy.get(`${a.site}/${a.code}`);
    return html`<li><a class="area ${p ? PRIORITY_CLASS[p] : "ok"}" href="#/areas/${a.id}">
      <strong>${pick(a, "name")}</strong><span class="meta">${a.site} · ${t(`process.${a.process}`)}</span>
      <span class="state">${p ? priorityName(p) : t("areas.normal")}</span></a></li>`;
  })}</ul>`.text;
}

function setArea(id) {
  if (state.area === id) return;
  const old = state.area;
  state.area = id;
  if (state.live && old) state.live.send({ type: "unsubscribe", areas: [old] });
  if (state.live && id) state.live.send({ type: "subscribe", areas: [id] });
}

async function renderArea(id) {
  let area, points;
  try {
    area = await api(`/api/v1/areas/${id}`);
    points = await list(`/api/v1/points?area_id=${id}&limit=500`, 2000);
    for (const r of await api(`/api/v1/latest?site=${encodeURIComponent(area.site)}`)) {
      if (!state.values.has(r.point_id) || state.values.get(r.point_id).time < r.time) state.values.set(r.point_id, r);
    }
  } catch (err) {
    if (err instanceof Offline) { view.innerHTML = html`<p class="card">${t("net.offline")}</p>`.text; return; }
    throw err;
  }
  setArea(id);
  const alarms = sortAlarms(state.alarms.filter((a) => a.site === area.site && a.area === area.code));
  const byDevice = new Map();
  for (const p of points) byDevice.set(p.device, [...(byDevice.get(p.device) || []), p]);
  view.innerHTML = html`<h2><a href="#/areas" class="back">‹</a> ${pick(area, "name")}</h2>
    ${alarms.length ? html`<ul class="alarms">${alarms.map(alarmRow)}</ul>` : ""}
    ${[...byDevice].map(([device, pts]) => html`<section class="card"><h3>${device}</h3><table class="values">
      ${pts.map((p) => html`<tr><th>${pick(p, "name")}</th><td class="value" data-point-id="${p.id}">–</td><td class="unit">${unit(p.unit)}</td></tr>`)}
    </table></section>`)}`.text;
  updateValues();
}

function updateValues() {
  for (const cell of view.querySelectorAll("[data-point-id]")) {
    const r = state.values.get(Number(cell.dataset.pointId));
    if (!r) continue;
    cell.textContent = r.value === null ? "—" : String(Math.round(r.value * 100) / 100);
    cell.title = formatTime(r.time, true);
    cell.classList.toggle("bad", r.quality > 0);
  }
}

// ---- settings ------------------------------------------------------------------------------------------------

async function renderSettings() {
  const pushState = await push.status();
  let prefs = null;
  try { prefs = await api("/api/v1/me/notification-settings"); } catch { prefs = null; }
  view.innerHTML = html`<h2>${t("settings.title")}</h2>
    <section class="card">
      <p>${t("settings.signed_in_as", { name: state.me?.name || "", role: state.me?.role || "" })}</p>
      <label>${t("settings.language")}<select id="lang">${LANGS.map((l) => html`<option value="${l}" ${l === currentLang() ? raw("selected") : ""}>${t(`lang.${l}`)}</option>`)}</select></label>
      <label class="check"><input type="checkbox" id="muted" ${sound.isMuted() ? raw("checked") : ""}> ${t("sound.muted")}</label>
    </section>
    ${pushState.available ? html`<section class="card" id="push">
      <h3>${t("push.title")}</h3><p>${t(pushState.subscribed ? "push.on" : "push.off")}</p>
      <button class="big ${pushState.subscribed ? "" : "primary"}" id="push-toggle">${t(pushState.subscribed ? "push.disable" : "push.enable")}</button>
      <p class="error" id="push-error"></p></section>` : ""}
    ${prefs ? html`<form class="card" id="prefs"><h3>${t("prefs.title")}</h3>
      <label>${t("prefs.min_priority")}<select name="min_priority">${[1, 2, 3, 4].map((p) => html`<option value="${p}" ${prefs.min_priority === p ? raw("selected") : ""}>${priorityName(p)}</option>`)}</select></label>
      ${Object.keys(prefs.channels || {}).map((c) => html`<label class="check"><input type="checkbox" name="ch_${c}" ${prefs.channels[c] ? raw("checked") : ""}> ${t(`channel.${c}`)}</label>`)}
      <fieldset class="quiet"><legend>${t("prefs.quiet")}</legend>
        <label>${t("prefs.quiet_start")}<input type="time" name="quiet_start" value="${prefs.quiet_hours?.start || ""}"></label>
        <label>${t("prefs.quiet_end")}<input type="time" name="quiet_end" value="${prefs.quiet_hours?.end || ""}"></label>
        <p class="muted">${t("prefs.quiet_note")}</p></fieldset>
      <button type="submit">${t("prefs.save")}</button><span id="prefs-saved"></span><p class="error" id="prefs-error"></p></form>` : ""}
    <section class="card"><button class="big" id="signout">${t("settings.sign_out")}</button></section>`.text;
  document.getElementById("lang").addEventListener("change", async (ev) => {
    setLang(ev.target.value); await loadLang("/app/", ev.target.value); renderShell(); render();
  });
  document.getElementById("muted").addEventListener("change", (ev) => {
    sound.setMuted(ev.target.checked); renderShell(); sound.alarm(sounding(state.alarms).length > 0);
  });
  document.getElementById("signout").addEventListener("click", async () => {
    // what this device kept for this user goes: queued actions (never sent under someone else's name), cached
    // alarms, names
    await signOut();
    for (const item of await outbox.all()) await outbox.remove(item.id);
    if ("caches" in window) for (const name of await caches.keys()) if (name.endsWith("-data")) await caches.delete(name);
    localStorage.removeItem("ehs.me");
    state.me = null; state.alarms = []; state.live?.close(); state.live = null;
    await refreshPending();
    go("#/login");
  });
  const toggle = document.getElementById("push-toggle");
  if (toggle) toggle.addEventListener("click", async () => {
    try { await (pushState.subscribed ? push.unsubscribe() : push.subscribe(currentLang())); renderSettings(); }
    catch (err) { document.getElementById("push-error").textContent = err.message; }
  });
  const form = document.getElementById("prefs");
  if (form) form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    const channels = Object.fromEntries(Object.keys(prefs.channels || {}).map((c) => [c, data.get(`ch_${c}`) === "on"]));
    const start = data.get("quiet_start");
    const end = data.get("quiet_end");
    try {
      await api("/api/v1/me/notification-settings", { method: "PUT", json: { ...prefs, lang: currentLang(),
        min_priority: Number(data.get("min_priority")), channels, quiet_hours: start && end ? { start, end } : null } });
      document.getElementById("prefs-saved").textContent = " ✓";
    } catch (err) { document.getElementById("prefs-error").textContent = err.message; }
  });
}

// ---- a push notification's link (the token is the credential; no sign-in) --------------------------------------

async function renderLink(token) {
  let link;
  try { link = await api(`/api/v1/links/${encodeURIComponent(token)}`); }
  catch { return renderLogin(); }
  const a = link.alarm;
  view.innerHTML = html`<article class="card alarm-head ${PRIORITY_CLASS[a.priority]}">
    <span class="prio">${priorityName(a.priority)}</span><h2>${alarmTitle(a)}</h2><p><strong>${stateName(a)}</strong></p>
    ${link.can_ack && needsAck(a) ? html`<button class="primary big" id="link-ack">${t("action.ack")}</button>` : ""}
    <p class="error" id="action-error"></p><a class="button" href="#/login">${t("login.submit")}</a></article>`.text;
  const b = document.getElementById("link-ack");
  if (b) b.addEventListener("click", async () => {
    try { await api(`/api/v1/links/${encodeURIComponent(token)}/ack`, { method: "POST", json: {} }); renderLink(token); }
    catch (err) { document.getElementById("action-error").textContent = err.message; }
  });
}

// ---- hazardous waste ----------------------------------------------------------------------------------------

function renderWaste(parts) {
  const ctx = { view, me: state.me, pending: state.pending, refresh: async () => { await refreshPending(); render(); } };
  if (parts[1] === "containers" && parts[2]) return renderContainer(ctx, Number(parts[2]));
  return renderScan(ctx);
}

// ---- offline queue -------------------------------------------------------------------------------------------

async function refreshPending() {
  state.pending = await outbox.all();
  renderStatus();
}

async function flushOutbox() {
  if (!session.get() || !state.me?.name) return;
  const sent = await outbox.flush(state.me.name);
  await refreshPending();
  if (sent || state.pending.some((p) => p.status !== "pending")) {
    await loadAlarms();
    const { parts } = route();
    if (parts[0] === "alarms" || parts[0] === "waste") render();
  }
}

// ---- start ---------------------------------------------------------------------------------------------------

async function main() {
  await loadLang("/app/");
  renderShell();
  document.getElementById("mute").addEventListener("click", () => {
    sound.unlock(); sound.setMuted(!sound.isMuted()); renderShell(); sound.alarm(sounding(state.alarms).length > 0);
  });
  document.addEventListener("click", () => sound.unlock(), { capture: true });
  window.addEventListener("hashchange", () => render().catch(showError));
  window.addEventListener("online", () => { renderStatus(); flushOutbox(); });
  window.addEventListener("offline", renderStatus);
  window.addEventListener("resize", () => resizeCharts(view));
  window.addEventListener("ehs:signed-out", () => { if (!session.get()) { state.me = null; go("#/login"); } });
  setInterval(() => { if (navigator.onLine) flushOutbox(); }, 10_000);
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch(() => {});
    navigator.serviceWorker.addEventListener("message", (ev) => { if (ev.data?.type === "alarm") scheduleReload(); });
  }
  await refreshPending();
  await render().catch(showError);
  flushOutbox();
}

function showError(err) {
  view.innerHTML = html`<p class="card error">${err instanceof Offline ? t("net.offline") : err.message}</p>`.text;
}

main();
