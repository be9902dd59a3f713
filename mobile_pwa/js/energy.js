// Energy on the phone (#/energy): today and this month per process (standard coal, cost, each medium's quantity,
// output and energy per unit), the time-of-use share of the month's electricity, and the top abnormal consumers,
// from GET /api/v1/energy/summary; #/energy/ledger is the ledger view with CSV and XLSX downloads
// (GET /api/v1/energy/ledger). Servers without the energy ledgers answer 404: the page then says so.
// Beside energy, for callers with carbon.read, the carbon section (GET /api/v1/carbon/summary): this month's tCO2e
// per process (scope 1, scope 2 location- and market-based), intensity per unit of output, today's hourly gCO2/kWh.

import { accessToken, api, ApiError, list } from "./api.js";
import { html, raw } from "./dom.js";
import { currentLang, formatTime, pick, t } from "./i18n.js";
import { draw } from "./echarts.js";

/** The native unit of each medium (what the meters of the demo plant count). */
export const MEDIUM_UNIT = { electricity: "kWh", water: "m³", compressed_air: "Nm³", nitrogen: "Nm³", steam: "t",
  natural_gas: "Nm³" };
const BANDS = ["critical", "peak", "flat", "valley"];
const BUCKETS = ["hour", "day", "month", "year"];
const GROUPS = ["area", "meter", "medium", "site"];

const num = (v, digits = 1) => (v === null || v === undefined || Number.isNaN(Number(v)) ? "—"
  : Number(v).toLocaleString(currentLang(), { maximumFractionDigits: digits }));
const money = (v) => (v === null || v === undefined ? "—" : `¥${num(v, 0)}`);
const mediumName = (m) => (t(`medium.${m}`) === `medium.${m}` ? m : t(`medium.${m}`));

/** The sites the caller may read; the chosen one (``?site=``) first. */
async function sites(wanted) {
  const all = await list("/api/v1/sites?limit=200", 200);
  const chosen = all.find((s) => s.code === wanted) || all[0] || null;
  return { all, chosen };
}

function notAvailable(view, what = "energy.unavailable") {
  view.innerHTML = html`<h2>${t("energy.title")}</h2><p class="card empty" id="energy-unavailable">${t(what)}</p>`.text;
}

function siteSelect(all, chosen) {
  if (all.length < 2) return "";
  return html`<label>${t("energy.site")}<select id="energy-site">${all.map((s) => html`
    <option value="${s.code}" ${s.code === chosen.code ? raw("selected") : ""}>${pick(s, "name")}</option>`)}</select></label>`;
}

function periodCard(id, title, period) {
  const areas = period?.by_area || [];
  const media = [...new Set(areas.flatMap((a) => Object.keys(a.by_medium || {})))];
  return html`<section class="card energy-period" id="${id}">
    <h3>${title}</h3>
    <p class="totals"><span class="big-figure" data-total="kgce">${num(period?.kgce, 0)}</span> kgce
      · <span class="big-figure" data-total="cost">${money(period?.cost)}</span></p>
    <div class="scroll"><table class="energy">
      <thead><tr><th>${t("energy.process")}</th><th>kgce</th><th>${t("energy.cost")}</th>
        ${media.map((m) => html`<th>${mediumName(m)} (${MEDIUM_UNIT[m] || ""})</th>`)}
        <th>${t("energy.output")}</th><th>${t("energy.per_unit")}</th></tr></thead>
      <tbody>${areas.map((a) => html`<tr data-area="${a.area}">
        <th>${a.name || a.area}</th><td>${num(a.kgce)}</td><td>${money(a.cost)}</td>
        ${media.map((m) => html`<td>${num(a.by_medium?.[m])}</td>`)}
        <td>${num(a.output, 0)}</td><td>${a.per_unit_kgce === null || a.per_unit_kgce === undefined ? "—"
          : html`${num(a.per_unit_kgce, 3)} ${t("energy.kgce_per_unit")}`}</td></tr>`)}</tbody>
    </table></div>
  </section>`;
}

function touCard(share) {
  if (!share) return "";
  const bands = BANDS.filter((b) => share[b] !== undefined && share[b] !== null);
  return html`<section class="card" id="energy-tou"><h3>${t("energy.tou")}</h3>
    <table class="energy tou">${bands.map((b) => html`<tr data-band="${b}"><th>${t(`energy.band.${b}`)}</th>
      <td><meter min="0" max="1" value="${share[b]}"></meter></td><td>${num(share[b] * 100, 1)}%</td></tr>`)}</table>
  </section>`;
}

function abnormalCard(items) {
  const top = [...(items || [])].sort((x, y) => (y.actual - y.expected) - (x.actual - x.expected)).slice(0, 10);
  return html`<section class="card" id="energy-abnormal"><h3>${t("energy.abnormal")}</h3>
    ${top.length ? html`<ul class="abnormal">${top.map((a) => html`<li data-meter="${a.meter}">
      <strong>${a.name || a.meter}</strong> <span class="meta">${a.area || ""}</span><br>
      ${t("energy.actual")} ${num(a.actual)} / ${t("energy.expected")} ${num(a.expected)} ${a.unit || ""}
      ${a.since ? html`<span class="meta"> · ${t("energy.since", { at: formatTime(a.since, true) })}</span>` : ""}
    </li>`)}</ul>` : html`<p class="muted">${t("energy.no_abnormal")}</p>`}</section>`;
}

const tonnes = (kg) => (kg === null || kg === undefined || Number.isNaN(Number(kg)) ? "—" : num(Number(kg) / 1000, 2));

/** The carbon summary of a site, or null where the caller may not read carbon or the server has none. */
async function carbonSummary(me, site) {
  if (!(me?.permissions || []).includes("carbon.read")) return null;
  try {
    return await api(`/api/v1/carbon/summary?site=${encodeURIComponent(site)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status < 500) return { error: err.message };
    throw err;
  }
}

function carbonCard(carbon) {
  if (!carbon) return "";
  if (carbon.error) {
    return html`<section class="card" id="carbon"><h3>${t("carbon.title")}</h3>
      <p class="muted" id="carbon-error">${t("carbon.unavailable")} ${carbon.error}</p></section>`;
  }
  const month = carbon.month || {};
  const totals = month.totals || {};
  const areas = month.by_area || [];
  const processes = (month.by_process || []).filter((p) => p.kg_per_unit !== null && p.kg_per_unit !== undefined);
  const hours = (carbon.intensity || []).filter((r) => r.g_per_kwh !== null && r.g_per_kwh !== undefined);
  const used = hours.reduce((a, r) => a + (r.grid_kwh || 0) + (r.onsite_kwh || 0), 0);
  const mean = used ? hours.reduce((a, r) => a + r.g_per_kwh * ((r.grid_kwh || 0) + (r.onsite_kwh || 0)), 0) / used
    : null;
  return html`<section class="card" id="carbon">
    <h3>${t("carbon.month", { period: month.period || "" })}${month.closed ? html` <span class="meta">${t("carbon.closed")}</span>` : ""}</h3>
    <p class="totals"><span class="big-figure" data-total="location">${tonnes(totals.total_location_kg)}</span>
      tCO2e ${t("carbon.location")} · <span class="big-figure" data-total="market">${tonnes(totals.total_market_kg)}</span>
      tCO2e ${t("carbon.market")}</p>
    <div class="scroll"><table class="energy" id="carbon-month">
      <thead><tr><th>${t("energy.process")}</th><th>${t("carbon.scope1")}</th><th>${t("carbon.scope2_location")}</th>
        <th>${t("carbon.scope2_market")}</th></tr></thead>
      <tbody>${areas.map((a) => html`<tr data-area="${a.area || ""}"><th>${a.name || a.area || t("carbon.unallocated")}</th>
        <td>${tonnes(a.scope1_kg)}</td><td>${tonnes(a.scope2_location_kg)}</td><td>${tonnes(a.scope2_market_kg)}</td></tr>`)}</tbody>
    </table></div>
    <p class="meta">tCO2e${month.factor_version ? html` · ${t("carbon.factors", { version: month.factor_version })}` : ""}</p>
    <h4>${t("carbon.intensity")}</h4>
    ${processes.length ? html`<table class="energy" id="carbon-per-unit">${processes.map((p) => html`
      <tr data-process="${p.process}"><th>${p.name || p.process}</th><td>${num(p.kg_per_unit, 3)} kgCO2e/${p.unit || ""}</td>
      <td class="meta">${num(p.output, 0)} ${p.unit || ""}</td></tr>`)}</table>`
      : html`<p class="muted">${t("carbon.no_output")}</p>`}
    <h4>${t("carbon.hourly")}</h4>
    <p class="totals" id="carbon-today-mean"><span class="big-figure">${num(mean, 0)}</span> gCO2/kWh
      <span class="meta">${t("carbon.mean_today")}</span></p>
    <div class="chart" id="carbon-hourly-chart"></div>
  </section>`;
}

/** #/energy: the summary of one site. ``ctx``: {view, me}. */
export async function renderEnergy(ctx, params) {
  const { view } = ctx;
  const { all, chosen } = await sites(params.get("site"));
  if (!chosen) return notAvailable(view, "energy.no_site");
  let summary;
  try {
    summary = await api(`/api/v1/energy/summary?site=${encodeURIComponent(chosen.code)}`);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return notAvailable(view);
    if (err instanceof ApiError && err.status === 403) return notAvailable(view, "energy.forbidden");
    throw err;
  }
  const carbon = await carbonSummary(ctx.me, chosen.code);
  view.innerHTML = html`<h2>${t("energy.title")} <a class="button small" href="#/energy/ledger?site=${chosen.code}"
      id="energy-ledger-link">${t("energy.ledger")}</a></h2>
    ${siteSelect(all, chosen)}
    ${periodCard("energy-today", t("energy.today"), summary.today)}
    <div class="chart" id="energy-today-chart"></div>
    ${periodCard("energy-month", t("energy.month"), summary.month)}
    ${touCard(summary.tou_share)}
    ${abnormalCard(summary.abnormal)}
    ${carbonCard(carbon)}`.text;
  document.getElementById("energy-site")?.addEventListener("change", (ev) => {
    location.hash = `#/energy?site=${encodeURIComponent(ev.target.value)}`;
  });
  const areas = summary.today?.by_area || [];
  if (areas.length) {
    await draw(document.getElementById("energy-today-chart"), {
      grid: { left: 56, right: 12, top: 28, bottom: 64 },
      xAxis: { type: "category", data: areas.map((a) => a.name || a.area), axisLabel: { rotate: 40 } },
      yAxis: { type: "value", name: "kgce" },
      tooltip: { trigger: "axis" },
      series: [{ name: "kgce", type: "bar", data: areas.map((a) => a.kgce ?? 0), itemStyle: { color: "#4ea1ff" } }],
    }).catch(() => { document.getElementById("energy-today-chart").remove(); });
  }
  const hours = (carbon?.intensity || []).filter((r) => r.g_per_kwh !== null && r.g_per_kwh !== undefined);
  if (hours.length) {
    await draw(document.getElementById("carbon-hourly-chart"), {
      grid: { left: 56, right: 12, top: 28, bottom: 40 },
      xAxis: { type: "category", data: hours.map((r) => formatTime(r.hour).slice(0, 5)) },
      yAxis: { type: "value", name: "gCO2/kWh" },
      tooltip: { trigger: "axis" },
      series: [{ name: "gCO2/kWh", type: "line", data: hours.map((r) => r.g_per_kwh), itemStyle: { color: "#66bb6a" } }],
    }).catch(() => { document.getElementById("carbon-hourly-chart").remove(); });
  } else document.getElementById("carbon-hourly-chart")?.remove();
}

/** Midnight starting the calendar day ``day`` (YYYY-MM-DD) in the time zone ``tz``, as an ISO instant: the
 *  ledger's days are the site's days, whatever zone the phone is set to. */
export function siteMidnight(day, tz) {
  const [y, m, d] = day.split("-").map(Number);
  const guess = Date.UTC(y, m - 1, d);
  const wall = (at) => {
    const p = Object.fromEntries(new Intl.DateTimeFormat("en-US", { timeZone: tz || undefined, hourCycle: "h23",
      year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" })
      .formatToParts(at).map((x) => [x.type, x.value]));
    return Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour), Number(p.minute), Number(p.second));
  };
  let at = guess - (wall(guess) - guess);
  at = guess - (wall(at) - at);             // once more across a daylight-saving change
  return new Date(at).toISOString();
}

function ledgerQuery(site, form) {
  const q = new URLSearchParams({ site: site.code, by: form.by, bucket: form.bucket,
    start: siteMidnight(form.start, site.timezone), end: siteMidnight(form.end, site.timezone) });
  if (form.medium) q.set("medium", form.medium);
  return q;
}

async function download(path, filename) {
  const resp = await fetch(path, { headers: { Authorization: `Bearer ${await accessToken()}` } });
  if (!resp.ok) throw new Error(resp.status === 404 ? t("energy.unavailable") : `HTTP ${resp.status}`);
  const url = URL.createObjectURL(await resp.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

const isoDay = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;

/** #/energy/ledger: one ledger view (grouping, bucket, period, medium) with its CSV and XLSX files. */
export async function renderLedger(ctx, params) {
  const { view } = ctx;
  const { chosen } = await sites(params.get("site"));
  if (!chosen) return notAvailable(view, "energy.no_site");
  const now = new Date();
  const form = { by: GROUPS.includes(params.get("by")) ? params.get("by") : "area",
    bucket: BUCKETS.includes(params.get("bucket")) ? params.get("bucket") : "day",
    start: params.get("start") || isoDay(new Date(now.getFullYear(), now.getMonth(), 1)),
    end: params.get("end") || isoDay(new Date(now.getFullYear(), now.getMonth(), now.getDate() + 1)),
    medium: params.get("medium") || "" };
  const q = ledgerQuery(chosen, form);
  let rows;
  try {
    rows = (await api(`/api/v1/energy/ledger?${q}`)).rows || [];
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return notAvailable(view);
    if (err instanceof ApiError && err.status === 403) return notAvailable(view, "energy.forbidden");
    if (err instanceof ApiError && err.status < 500) rows = { error: err.message };
    else throw err;
  }
  view.innerHTML = html`<h2><a href="#/energy?site=${chosen.code}" class="back">‹</a> ${t("energy.ledger")}</h2>
    <form class="card" id="ledger-form">
      <label>${t("energy.by")}<select name="by">${GROUPS.map((g) => html`<option value="${g}" ${g === form.by ? raw("selected") : ""}>${t(`energy.by.${g}`)}</option>`)}</select></label>
      <label>${t("energy.bucket")}<select name="bucket">${BUCKETS.map((b) => html`<option value="${b}" ${b === form.bucket ? raw("selected") : ""}>${t(`energy.bucket.${b}`)}</option>`)}</select></label>
      <label>${t("energy.medium")}<select name="medium"><option value="">${t("energy.all_media")}</option>${Object.keys(MEDIUM_UNIT).map((m) => html`
        <option value="${m}" ${m === form.medium ? raw("selected") : ""}>${mediumName(m)}</option>`)}</select></label>
      <label>${t("energy.start")}<input type="date" name="start" value="${form.start}" required></label>
      <label>${t("energy.end")}<input type="date" name="end" value="${form.end}" required></label>
      <button class="primary" type="submit">${t("energy.show")}</button>
    </form>
    <p class="downloads">
      <button type="button" class="download" data-format="csv">${t("energy.download_csv")}</button>
      <button type="button" class="download" data-format="xlsx">${t("energy.download_xlsx")}</button>
      <span class="error" role="alert" id="ledger-error">${rows.error || ""}</span></p>
    ${Array.isArray(rows) ? html`<div class="scroll"><table class="energy ledger" id="ledger-rows">
      <thead><tr><th>${t("energy.key")}</th><th>${t("energy.bucket")}</th><th>${t("energy.quantity")}</th><th>kgce</th>
        <th>${t("energy.cost")}</th><th>${t("energy.quality")}</th></tr></thead>
      <tbody>${rows.map((r) => html`<tr data-key="${r.key}">
        <th>${r.name || r.key}${r.medium ? html` <span class="meta">${mediumName(r.medium)}</span>` : ""}</th>
        <td>${formatBucket(r.bucket, form.bucket)}</td><td>${num(r.quantity)} ${r.unit || ""}</td><td>${num(r.kgce)}</td>
        <td>${money(r.cost)}</td><td class="quality">${qualityText(r.quality)}</td></tr>`)}</tbody>
    </table></div>${rows.length ? "" : html`<p class="empty">${t("energy.no_rows")}</p>`}` : ""}`.text;
  document.getElementById("ledger-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const data = new URLSearchParams(new FormData(ev.target));
    data.set("site", chosen.code);
    location.hash = `#/energy/ledger?${data}`;
  });
  for (const button of view.querySelectorAll("button.download")) {
    button.addEventListener("click", async () => {
      const format = button.dataset.format;
      button.disabled = true;
      try {
        await download(`/api/v1/energy/ledger?${q}&format=${format}`,
                       `energy-${chosen.code}-${form.by}-${form.bucket}-${form.start}.${format}`);
      } catch (err) {
        document.getElementById("ledger-error").textContent = err.message;
      } finally { button.disabled = false; }
    });
  }
}

function formatBucket(value, bucket) {
  if (!value) return "";
  if (bucket === "hour" || bucket === "15min") return formatTime(value, true);
  return String(value).slice(0, bucket === "year" ? 4 : bucket === "month" ? 7 : 10);
}

function qualityText(q) {
  if (!q) return "";
  const parts = [];
  if (q.estimated) parts.push(t("energy.estimated", { n: q.estimated }));
  if (q.missing) parts.push(t("energy.missing", { n: q.missing }));
  return parts.length ? parts.join(" · ") : t("energy.measured");
}
