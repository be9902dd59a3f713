// The control-room screen (/screen/): areas coloured by their worst alarm, the live alarm list with flood groups
// and first-out, unacknowledged critical alarms with an audible signal, interlock states. Runs unattended with a
// viewer API key (/screen/?token=KEY, kept in this browser) or the session of a user signed in at /app/, and
// reconnects by itself. The energy panel (a Sankey of the meter tree from GET /api/v1/energy/flow, today's standard
// coal and cost per process from GET /api/v1/energy/summary, drawn with the vendored ECharts) refreshes every few
// minutes and stays hidden while the server has no energy ledgers (404). The emissions panel (each outfall's latest
// values against their limits coloured by the ratio, today's compliance and this month's exceedances, from
// GET /api/v1/compliance/overview) refreshes every minute and stays hidden without outfalls or the permission.
// ?site=CODE picks the site it shows.

import { factor, limit } from "/app/js/compliance.js";
import { alarmTitle, needsAck, PRIORITY_CLASS, priorityName, sortAlarms, sounding, stateName, worst } from "/app/js/alarms.js";
import { api, ApiError, list, Offline, session, wsCredentials } from "/app/js/api.js";
import { html } from "/app/js/dom.js";
import { draw, resizeCharts } from "/app/js/echarts.js";
import { formatTime, loadLang, pick, t } from "/app/js/i18n.js";
import { connectLive } from "/app/js/live.js";
import * as sound from "/app/js/sound.js";

const $ = (id) => document.getElementById(id);
const data = { areas: [], alarms: [], commands: null, floods: new Map() };

function takeToken() {
  const url = new URL(location.href);
  const token = url.searchParams.get("token");
  if (token) {
    session.setApiKey(token);
    url.searchParams.delete("token");
    history.replaceState(null, "", url.pathname + url.search + url.hash);   // keep it out of the address bar
  }
}

/** One source: its rows, or null when the server does not offer it (404); sign-in problems are shown. */
async function fetchList(path, max) {
  try {
    return await list(path, max);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
      $("message").textContent = t("screen.token");
      $("message").classList.remove("hidden");
      return undefined;
    }
    if (err instanceof Offline) return undefined;
    $("message").textContent = err.message;
    $("message").classList.remove("hidden");
    return undefined;
  }
}

/** Without a command list on the server: the interlock commands of the open alarms that started a response plan
 *  (from their detail), newest first. */
async function commandsOfAlarms(alarms) {
  const started = alarms.filter((a) => a.plan_level !== null && a.plan_level !== undefined).slice(0, 10);
  const details = await Promise.all(started.map((a) => api(`/api/v1/alarms/${a.id}`).catch(() => null)));
  const byId = new Map();
  for (const d of details) for (const c of d?.commands || []) byId.set(c.id, c);
  return [...byId.values()].sort((x, y) => Date.parse(y.created_at) - Date.parse(x.created_at));
}

async function load() {
  $("message").classList.add("hidden");
  const [areas, alarms, commands, floods] = await Promise.all([fetchList("/api/v1/areas?limit=500", 2000),
    fetchList("/api/v1/alarms?open=true&limit=500", 500), fetchList("/api/v1/commands?limit=100", 100),
    fetchList("/api/v1/floods?open=true&limit=50", 50)]);
  if (floods !== undefined) data.floods = new Map((floods || []).map((f) => [f.id, f]));
  if (areas !== undefined) data.areas = areas || [];
  if (alarms !== undefined) data.alarms = alarms || [];
  if (commands !== undefined) data.commands = commands ?? await commandsOfAlarms(data.alarms);
  render();
}

function areaName(alarm) {
  const area = data.areas.find((a) => a.site === alarm.site && a.code === alarm.area);
  return area ? pick(area, "name") : alarm.area || "";
}

function render() {
  const alarms = sortAlarms(data.alarms);
  // areas
  $("areas").innerHTML = html`${data.areas.map((a) => {
    const mine = alarms.filter((x) => x.site === a.site && x.area === a.code);
    const w = worst(mine);
    const unacked = mine.some(needsAck);
    return html`<div class="tile ${w ? PRIORITY_CLASS[w.priority] : "ok"} ${unacked ? "unacked" : ""}" data-area="${a.site}/${a.code}">
      <strong>${pick(a, "name")}</strong>
      <span class="sub">${w ? html`${priorityName(w.priority)} · ${mine.length}` : t("areas.normal")}</span></div>`;
  })}`.text;
  // alarms, in flood groups (a flood is shown as one group headed by its first-out alarm)
  const groups = new Map();
  for (const a of alarms) {
    const key = a.flood_id ? `f${a.flood_id}` : `a${a.id}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(a);
  }
  const row = (a) => html`<li class="alarm ${PRIORITY_CLASS[a.priority]} ${needsAck(a) ? "unacked" : "acked"}"
      data-alarm-id="${a.id}" data-state="${a.state}">
    <span class="prio">${priorityName(a.priority)}</span>
    <span class="title">${a.first_out ? html`<b class="first-out">1st</b> ` : ""}${alarmTitle(a)}${a.drill ? html` <em class="drill">${t("alarm.drill")}</em>` : ""}</span>
    <span class="where">${areaName(a)} · ${a.device || ""}</span>
    <span class="state">${stateName(a)}</span>
    <time>${formatTime(a.last_raised_at || a.raised_at || a.opened_at)}</time></li>`;
  $("alarms").innerHTML = html`${alarms.length ? [...groups.values()].map((g) => (g.length > 1 || g[0].flood_id)
    ? html`<div class="flood"><h3>${t("screen.flood", { n: data.floods.get(g[0].flood_id)?.alarm_count ?? g.length })}
        ${areaName(g[0])} · ${formatTime(data.floods.get(g[0].flood_id)?.started_at || g[g.length - 1].raised_at)}</h3><ul>${g.sort((x, y) => (y.first_out - x.first_out)).map(row)}</ul></div>`
    : html`<ul>${g.map(row)}</ul>`) : html`<p class="none">${t("inbox.empty")}</p>`}`.text;
  // unacknowledged critical alarms: banner and sound
  const critical = sounding(alarms);
  $("critical").innerHTML = critical.length ? html`<strong>${t("screen.critical")}: ${critical.length}</strong> ${critical.slice(0, 3).map((a) => html`<span>${alarmTitle(a)}</span>`)}`.text : "";
  $("critical").classList.toggle("on", critical.length > 0);
  sound.alarm(critical.length > 0);
  const blocked = critical.length > 0 && !sound.isMuted() && sound.audioBlocked();
  $("sound").classList.toggle("hidden", !blocked);
  // interlocks
  $("commands-box").classList.toggle("hidden", data.commands === null);
  if (data.commands) {
    // the state of each interlock: its latest command per device and action
    const latest = new Map();
    for (const c of data.commands) {
      const key = `${c.device} ${c.action}`;
      if (!latest.has(key) || Date.parse(latest.get(key).created_at) < Date.parse(c.created_at)) latest.set(key, c);
    }
    const shown = [...latest.values()].sort((x, y) => Date.parse(y.created_at) - Date.parse(x.created_at));
    $("commands").innerHTML = html`${shown.length ? html`<ul>${shown.slice(0, 12).map((c) => html`
      <li class="cmd ${c.status}"><strong>${c.device}</strong> ${c.action}
        <span class="badge">${t(`command.${c.status}`)}</span>${c.drill ? html` <em class="drill">${t("alarm.drill")}</em>` : ""}
        <time>${formatTime(c.created_at || c.issued_at)}</time></li>`)}</ul>` : html`<p class="none">${t("screen.no_commands")}</p>`}`.text;
  }
}

// ---- energy panel ----------------------------------------------------------------------------------------------

const ENERGY_REFRESH_MS = 5 * 60_000;
const NODE_COLOURS = { meter: "#4ea1ff", area: "#2e7d32", loss: "#e53935", unmetered: "#fb8c00" };

/** Today so far in the site's time zone, as ISO instants. */
function today(timezone) {
  const now = new Date();
  const local = new Intl.DateTimeFormat("sv-SE", { timeZone: timezone || undefined, hour12: false, hour: "2-digit",
    minute: "2-digit", second: "2-digit" }).format(now).split(":").map(Number);
  const start = new Date(now.getTime() - ((local[0] % 24) * 3600 + local[1] * 60 + local[2]) * 1000);
  start.setMilliseconds(0);
  return { start: start.toISOString(), end: now.toISOString() };
}

/** The energy JSON at ``path``, or null when the server has none (404) or refuses it. */
async function energyJson(path) {
  try { return await api(path); } catch (err) {
    if (err instanceof ApiError && [401, 403, 404].includes(err.status)) return null;
    throw err;
  }
}

function sankeyOption(flow) {
  return {
    tooltip: { trigger: "item" },
    series: [{
      type: "sankey", left: 8, right: 120, top: 8, bottom: 8, nodeGap: 6, draggable: false, layoutIterations: 32,
      emphasis: { focus: "adjacency" },
      data: flow.nodes.map((n) => ({ name: n.name, label_text: n.label || n.name, kind: n.kind,
                                     itemStyle: { color: NODE_COLOURS[n.kind] || "#8d9aa8" } })),
      links: flow.links.filter((l) => l.value > 0).map((l) => ({ source: l.source, target: l.target, value: l.value })),
      label: { color: "#eef3f8", fontSize: 15, formatter: (p) => p.data.label_text || p.name },
      lineStyle: { color: "gradient", opacity: 0.45 },
    }],
  };
}

/** Today's tCO2e per process (scope 1 + scope 2 location-based) by area code, from the carbon summary. */
function carbonByArea(carbon) {
  return Object.fromEntries((carbon?.today?.by_area || []).filter((a) => a.area)
    .map((a) => [a.area, ((a.scope1_kg || 0) + (a.scope2_location_kg || 0)) / 1000]));
}

function barsOption(byArea, carbon) {
  const names = byArea.map((a) => a.name || a.area);
  const tco2e = carbon ? carbonByArea(carbon) : null;
  const legend = [t("energy.kgce"), t("energy.cost_cny"), ...(tco2e ? [t("screen.carbon")] : [])];
  return {
    legend: { data: legend, textStyle: { color: "#eef3f8", fontSize: 15 }, top: 0 },
    grid: { left: 8, right: 8, top: 40, bottom: 8, containLabel: true },
    tooltip: { trigger: "axis" },
    xAxis: { type: "category", data: names, axisLabel: { rotate: 35, color: "#eef3f8", fontSize: 15 } },
    yAxis: [{ type: "value", axisLabel: { fontSize: 14 } }, { type: "value", axisLabel: { fontSize: 14 } },
      ...(tco2e ? [{ type: "value", show: false }] : [])],
    series: [
      { name: t("energy.kgce"), type: "bar", data: byArea.map((a) => a.kgce ?? 0), itemStyle: { color: "#4ea1ff" } },
      { name: t("energy.cost_cny"), type: "bar", yAxisIndex: 1, data: byArea.map((a) => a.cost ?? 0),
        itemStyle: { color: "#fdd835" } },
      ...(tco2e ? [{ name: t("screen.carbon"), type: "bar", yAxisIndex: 2, itemStyle: { color: "#66bb6a" },
        data: byArea.map((a) => Math.round((tco2e[a.area] ?? 0) * 1000) / 1000) }] : []),
    ],
  };
}

/** The carbon summary, or null: the panel shows energy whatever carbon answers (no permission, no factors). */
async function carbonJson(path) {
  try { return await api(path); } catch (err) {
    if (err instanceof ApiError && err.status < 500) return null;
    throw err;
  }
}

async function loadEnergy() {
  const wanted = new URL(location.href).searchParams.get("site");
  const sites = await fetchList("/api/v1/sites?limit=200", 200);
  const site = (sites || []).find((s) => s.code === wanted) || (sites || [])[0];
  if (!site) { $("energy-box").classList.add("hidden"); return; }
  const { start, end } = today(site.timezone);
  const q = `site=${encodeURIComponent(site.code)}`;
  const [flow, summary, carbon] = await Promise.all([
    energyJson(`/api/v1/energy/flow?${q}&start=${encodeURIComponent(start)}&end=${encodeURIComponent(end)}&medium=electricity`),
    energyJson(`/api/v1/energy/summary?${q}`), carbonJson(`/api/v1/carbon/summary?${q}`)]);
  const showFlow = Boolean(flow && flow.nodes?.length);
  const byArea = summary?.today?.by_area || [];
  $("energy-box").classList.toggle("hidden", !showFlow && !byArea.length);
  if (!showFlow && !byArea.length) return;
  $("energy-sub").textContent = `${pick(site, "name")} · ${t("energy.today")}${flow?.unit ? ` · ${flow.unit}` : ""}`
    + (summary?.today ? ` · ${Math.round(summary.today.kgce ?? 0)} kgce` : "")
    + (carbon?.today?.totals ? ` · ${(carbon.today.totals.total_location_kg / 1000).toFixed(2)} tCO2e` : "");
  $("energy-flow").classList.toggle("hidden", !showFlow);
  if (showFlow) await draw($("energy-flow"), sankeyOption(flow));
  $("energy-bars").classList.toggle("hidden", !byArea.length);
  if (byArea.length) await draw($("energy-bars"), barsOption(byArea, carbon));
}

function refreshEnergy() {
  loadEnergy().catch((err) => { $("message").textContent = err.message; $("message").classList.remove("hidden"); });
}

// ---- emissions panel -------------------------------------------------------------------------------------------

const EMISSIONS_REFRESH_MS = 60_000;
const RATIO_COLOURS = { ok: "#2e7d32", warn: "#fdd835", bad: "#e53935", none: "#8d9aa8" };

/** The latest value as a share of its limit (1.0 at the limit; below a lower bound: min / value), or null. */
function ratio(p, value) {
  if (value === null || value === undefined) return null;
  const shares = [];
  if (p.limit_max !== null && p.limit_max !== undefined && p.limit_max > 0) shares.push(value / p.limit_max);
  if (p.limit_min !== null && p.limit_min !== undefined) shares.push(value > 0 ? p.limit_min / value : Infinity);
  return shares.length ? Math.max(...shares) : null;
}

const ratioClass = (r) => (r === null ? "none" : r > 1 ? "bad" : r >= 0.9 ? "warn" : "ok");
const num = (v) => (v === null || v === undefined ? "—" : Number(v).toLocaleString(undefined, { maximumFractionDigits: 3 }));
/** A period's start on the site's clock (MM-DD HH:mm), whatever the screen's own time zone. */
function siteTime(value, tz) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", { timeZone: tz || undefined, month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).formatToParts(new Date(value))
    .map((x) => [x.type, x.value]));
  return `${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
}

function emissionsChart(rows) {
  return {
    grid: { left: 8, right: 40, top: 8, bottom: 8, containLabel: true },
    tooltip: { trigger: "axis" },
    xAxis: { type: "value", axisLabel: { color: "#eef3f8", fontSize: 14, formatter: "{value}%" } },
    yAxis: { type: "category", inverse: true, data: rows.map((r) => r.label), axisLabel: { color: "#eef3f8", fontSize: 14 } },
    series: [{
      name: t("screen.emissions_ratio"), type: "bar",
      data: rows.map((r) => ({ value: r.ratio === null ? 0 : Math.round(r.ratio * 1000) / 10,
                               itemStyle: { color: RATIO_COLOURS[ratioClass(r.ratio)] } })),
      markLine: { symbol: "none", silent: true, lineStyle: { color: "#e53935", type: "dashed", width: 2 },
                  label: { show: false }, data: [{ xAxis: 100 }] },
    }],
  };
}

async function loadEmissions() {
  const wanted = new URL(location.href).searchParams.get("site");
  let body;
  try {
    body = await api(`/api/v1/compliance/overview?reports=0${wanted ? `&site=${encodeURIComponent(wanted)}` : ""}`);
  } catch (err) {
    if (err instanceof ApiError && [401, 403, 404].includes(err.status)) { $("emissions-box").classList.add("hidden"); return; }
    throw err;
  }
  const site = (body.sites || []).find((s) => s.outfalls?.length);
  $("emissions-box").classList.toggle("hidden", !site);
  if (!site) return;
  const chartRows = [];
  let exceededToday = 0;
  const outfalls = site.outfalls.map((o) => {
    const rows = o.pollutants.map((p) => {
      const value = p.latest ? p.latest.value : null;
      const r = ratio(p, value);
      chartRows.push({ label: `${o.code} ${factor(p.pollutant)}`, ratio: r });
      return { p, value, r };
    });
    const today = o.pollutants.reduce((n, p) => n + (p.today?.exceeded || 0), 0);
    const overNow = rows.filter((x) => x.r !== null && x.r > 1).length;
    exceededToday += today;
    const status = today ? t("screen.emissions_bad", { n: today })
      : overNow ? t("screen.emissions_over_now", { n: overNow }) : t("screen.emissions_ok");
    return html`<div class="outfall" data-outfall="${o.code}">
      <h3>${o.name} <span class="status ${today || overNow ? "bad" : "ok"}">${status}</span></h3>
      ${rows.map(({ p, value, r }) => html`<div class="emission ${ratioClass(r)}" data-pollutant="${p.pollutant}">
        <span class="name">${factor(p.pollutant)}</span>
        <span class="value">${num(value)}</span>
        <span class="limit">${limit(p)}</span>
        <span class="bar"><i data-width="${Math.min(100, Math.round((r ?? 0) * 100))}"></i></span></div>`)}
    </div>`;
  });
  $("emissions").innerHTML = html`${outfalls}`.text;
  // bar lengths through the CSSOM (the screen's CSP allows no inline style attributes)
  for (const bar of $("emissions").querySelectorAll(".bar i")) bar.style.width = `${bar.dataset.width}%`;
  $("emissions-sub").textContent = `${pick(site, "name")} · `
    + (exceededToday ? t("screen.emissions_bad", { n: exceededToday }) : t("screen.emissions_ok"))
    + ` · ${t("screen.emissions_open", { n: site.exceedances_total ?? site.exceedances.length })}`;
  const recent = (site.exceedances || []).slice(0, 5);
  $("emissions-exceedances").innerHTML = html`${recent.length ? html`<ul>${recent.map((e) => html`<li>
    ${siteTime(e.period_start, site.timezone)} · ${e.outfall} · ${factor(e.pollutant)} · ${num(e.value)} (${limit(e)})</li>`)}</ul>`
    : html`<p class="none">${t("screen.emissions_none")}</p>`}`.text;
  await draw($("emissions-chart"), emissionsChart(chartRows));
}

function refreshEmissions() {
  loadEmissions().catch((err) => { $("message").textContent = err.message; $("message").classList.remove("hidden"); });
}

let timer = null;
const reload = () => { clearTimeout(timer); timer = setTimeout(load, 250); };

async function main() {
  takeToken();
  await loadLang("/app/", new URL(location.href).searchParams.get("lang") || undefined);
  document.title = t("screen.title");
  $("title").textContent = `${t("app.title")} · ${t("screen.title")}`;
  $("areas-title").textContent = t("screen.areas");
  $("alarms-title").textContent = t("screen.alarms");
  $("commands-title").textContent = t("screen.commands");
  $("energy-title").textContent = t("screen.energy_flow");
  $("emissions-title").textContent = t("screen.emissions");
  window.addEventListener("resize", () => resizeCharts());
  $("sound").textContent = t("sound.enable");
  $("sound").addEventListener("click", () => { sound.unlock(); setTimeout(render, 100); });
  document.addEventListener("click", () => sound.unlock());
  window.addEventListener("ehs:audio", render);
  sound.unlock();   // runs at once where the browser allows sound without a click (kiosk: --autoplay-policy=...)
  const tick = () => { $("clock").textContent = formatTime(new Date(), true); };
  tick();
  setInterval(tick, 1000);
  await load();
  connectLive({
    credentials: wsCredentials,
    subscription: () => ({ alarms: "*" }),
    onStatus: (s) => { $("net").textContent = t(`net.${s}`); $("net").className = `net ${s}`; },
    onMessage: (msg) => { if (msg.type === "alarm" || msg.type === "gap" || msg.type === "welcome") reload(); },
  });
  setInterval(reload, 60_000);   // a safety net beside the live feed
  refreshEnergy();
  setInterval(refreshEnergy, ENERGY_REFRESH_MS);
  refreshEmissions();
  setInterval(refreshEmissions, EMISSIONS_REFRESH_MS);
}

main();
