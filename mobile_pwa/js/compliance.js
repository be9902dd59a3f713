// The compliance overview (#/compliance), read only: per site in the caller's scope, each outfall's pollutants
// against their limits today and this month (the compliance job's results, averaged the regulator's way), the
// latest value, this month's exceedances, open compliance and treatment-plant alarms, the hazardous-waste status,
// and the newest archived reports (downloads are audited by the server). Regulators land here after sign-in.

import { api } from "./api.js";
import { html } from "./dom.js";
import { currentLang, formatTime, pick, t } from "./i18n.js";
import { download } from "./reports.js";

// HJ 212 factor codes (HJ 212-2017 Appendix B) of the pollutants a battery plant reports; others show their code.
const FACTORS = {
  w01001: ["pH", "pH"], w01018: ["化学需氧量", "COD"], w21003: ["氨氮", "NH3-N"], w21011: ["总磷", "TP"],
  w21001: ["总氮", "TN"], w21017: ["氟化物", "Fluoride"], w01012: ["悬浮物", "SS"], w20038: ["总钴", "Total cobalt"],
  w20121: ["总镍", "Total nickel"], w00000: ["废水流量", "Wastewater flow"], a24088: ["非甲烷总烃", "NMHC"],
  a34013: ["颗粒物", "Particulates"], a19001: ["含氧量", "O2"], a01012: ["烟气温度", "Flue-gas temperature"],
  a00000: ["烟气流量", "Flue-gas flow"], a21026: ["二氧化硫", "SO2"], a21002: ["氮氧化物", "NOx"],
};
export const factor = (code) => (FACTORS[code] ? FACTORS[code][currentLang() === "en" ? 1 : 0] : code);
// Times in the site's zone (the regulator's calendar), not the phone's.
function at(value, tz) {
  if (!value) return "";
  const parts = Object.fromEntries(new Intl.DateTimeFormat("en-GB", { timeZone: tz || undefined, month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).formatToParts(new Date(value))
    .map((x) => [x.type, x.value]));
  return `${parts.month}-${parts.day} ${parts.hour}:${parts.minute}`;
}
const num = (v) => (v === null || v === undefined ? "—" : Number(v).toLocaleString(currentLang(), { maximumFractionDigits: 3 }));

export function limit(p) {
  if (p.limit_min !== null && p.limit_min !== undefined && p.limit_max !== null && p.limit_max !== undefined) {
    return `${num(p.limit_min)}–${num(p.limit_max)}`;
  }
  if (p.limit_max !== null && p.limit_max !== undefined) return `≤ ${num(p.limit_max)}`;
  if (p.limit_min !== null && p.limit_min !== undefined) return `≥ ${num(p.limit_min)}`;
  return "—";
}

const over = (p, v) => v !== null && v !== undefined && ((p.limit_max != null && v > p.limit_max)
  || (p.limit_min != null && v < p.limit_min));

function pollutantRow(p, tz) {
  const averaging = p.averaging ? t(`compliance.avg.${p.averaging}`) : "";
  return html`<tr data-pollutant="${p.pollutant}">
    <th>${factor(p.pollutant)} <span class="meta">${p.pollutant}</span></th>
    <td>${limit(p)} <span class="meta">${averaging}</span></td>
    <td class="${over(p, p.latest?.value) ? "bad" : ""}">${num(p.latest?.value)}
      <span class="meta">${p.latest ? at(p.latest.time, tz) : ""}</span></td>
    <td class="${p.today.exceeded ? "bad" : ""}" data-cell="today">${p.today.periods
      ? t("compliance.periods", { n: p.today.periods, x: p.today.exceeded, max: num(p.today.max) }) : "—"}</td>
    <td class="${p.month.exceeded ? "bad" : ""}" data-cell="month">${p.month.periods
      ? t("compliance.month_cell", { mean: num(p.month.mean), max: num(p.month.max), x: p.month.exceeded,
        n: p.month.periods, invalid: p.month.periods - p.month.valid }) : "—"}</td>
  </tr>`;
}

function outfallCard(o, tz) {
  return html`<article class="card outfall" data-outfall="${o.code}">
    <h3>${o.name} <span class="meta">${t(`compliance.medium.${o.medium}`)} · ${o.standards.join(", ")}
      ${o.permit ? ` · ${t("compliance.permit")} ${o.permit}` : ""}</span></h3>
    <div class="scroll"><table class="compliance">
      <thead><tr><th>${t("compliance.pollutant")}</th><th>${t("compliance.limit")}</th><th>${t("compliance.latest")}</th>
        <th>${t("compliance.today")}</th><th>${t("compliance.month")}</th></tr></thead>
      <tbody>${o.pollutants.map((p) => pollutantRow(p, tz))}</tbody>
    </table></div>
  </article>`;
}

function exceedances(site) {
  if (!site.exceedances.length) return html`<p class="meta" id="no-exceedances">${t("compliance.no_exceedances")}</p>`;
  return html`<ul class="exceedances">${site.exceedances.map((e) => html`<li class="bad">
    ${at(e.period_start, site.timezone)} · ${e.outfall} · ${factor(e.pollutant)} (${t(`compliance.avg.${e.averaging}`)})
    ${num(e.value)} / ${limit(e)} <span class="meta">${e.source}</span></li>`)}</ul>
    ${site.exceedances_total > site.exceedances.length
      ? html`<p class="meta">${t("compliance.more", { n: site.exceedances_total - site.exceedances.length })}</p>` : ""}`;
}

function alarms(site) {
  if (!site.alarms.length) return html`<p class="meta">${t("compliance.no_alarms")}</p>`;
  return html`<ul class="alarms">${site.alarms.map((a) => html`<li><a class="alarm p${a.priority}"
    href="#/alarms/${a.id}" data-alarm-id="${a.id}">${pick(a, "title")} <span class="meta">${a.area || ""}
    ${a.device || ""} · ${at(a.raised_at, site.timezone)}</span></a></li>`)}</ul>`;
}

function hazwaste(h) {
  if (!h) return "";
  const manifests = Object.entries(h.open_manifests).map(([s, n]) => `${t(`compliance.manifest.${s}`)} ${n}`);
  return html`<section class="card" id="hazwaste-status"><h3>${t("compliance.hazwaste")}</h3>
    <p>${t("compliance.stored", { n: h.containers_in_storage, kg: num(h.kg_in_storage) })}
      ${h.oldest_days !== null ? t("compliance.oldest", { d: num(h.oldest_days), limit: h.limit_days }) : ""}</p>
    <p class="${h.containers_over_limit ? "bad" : ""}">${t("compliance.storage_time",
      { warn: h.containers_warned, over: h.containers_over_limit, days: h.warn_days[0] })}</p>
    <p>${t("compliance.manifests")}: ${manifests.length ? manifests.join(" · ") : "—"}</p>
    <a class="button" href="#/waste">${t("compliance.open_waste")}</a></section>`;
}

function reports(site, titles) {
  const tz = site.timezone;
  if (site.reports === null) return "";
  return html`<section class="card"><h3>${t("compliance.reports")}</h3>
    ${site.reports.length ? "" : html`<p class="meta">${t("reports.none")}</p>`}
    <ul class="compliance-reports">${site.reports.map((r) => html`<li data-report="${r.id}">
      ${titles.get(r.kind) || r.kind} · ${at(r.generated_at, tz)} · ${r.format.toUpperCase()}
      <button type="button" class="download" data-id="${r.id}" data-name="${r.filename}">${t("reports.download")}</button>
    </li>`)}</ul><a href="#/reports">${t("compliance.all_reports")}</a></section>`;
}

/** ``params``: the route's query; ``day=YYYY-MM-DD`` looks back to the end of that day (each site's calendar). */
export async function renderCompliance(view, params) {
  const day = /^\d{4}-\d{2}-\d{2}$/.test(params?.get("day") || "") ? params.get("day") : "";
  const hash = location.hash;
  const data = await api(`/api/v1/compliance/overview${day ? `?day=${day}` : ""}`);
  const kinds = data.sites.some((s) => s.reports?.length) ? await api("/api/v1/reports/kinds") : [];
  if (location.hash !== hash) return;               // the person moved on meanwhile: leave their new page alone
  const titles = new Map(kinds.map((k) => [k.name, currentLang() === "en" ? k.title_en : k.title]));
  view.innerHTML = html`<div class="compliance-overview"><h2>${t("compliance.title")}</h2>
    <p class="meta">${t("compliance.as_of", { at: formatTime(data.generated_at, true) })}</p>
    <label class="meta">${t("compliance.day")} <input type="date" id="compliance-day" value="${day}"></label>
    ${data.sites.length ? "" : html`<p class="empty">${t("compliance.none")}</p>`}
    ${data.sites.map((s) => html`<section class="site" data-site="${s.site}">
      <h2>${pick(s, "name")}</h2>
      <p class="meta">${t("compliance.window", { day: s.window.day_start.slice(0, 10), month: s.window.month_start.slice(0, 7),
        tz: s.timezone })}</p>
      ${s.outfalls.length ? s.outfalls.map((o) => outfallCard(o, s.timezone)) : html`<p class="meta">${t("compliance.no_outfalls")}</p>`}
      <section class="card"><h3>${t("compliance.exceedances", { n: s.exceedances_total })}</h3>${exceedances(s)}</section>
      <section class="card"><h3>${t("compliance.alarms")}</h3>${alarms(s)}</section>
      ${hazwaste(s.hazwaste)}
      ${reports(s, titles)}
    </section>`)}</div>`.text;
  view.querySelector("#compliance-day").addEventListener("change", (ev) => {
    location.hash = ev.target.value ? `#/compliance?day=${ev.target.value}` : "#/compliance";
  });
  for (const button of view.querySelectorAll("button.download")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      try { await download(button.dataset.id, button.dataset.name); } finally { button.disabled = false; }
    });
  }
}
