// The report archive, read only: the reports the signed-in person may see (regulators: those of their sites'
// compliance areas), newest first, each downloadable byte for byte (the server audits every download).

import { accessToken, api, list } from "./api.js";
import { html } from "./dom.js";
import { currentLang, formatTime, t } from "./i18n.js";

const sizeText = (n) => (n >= 1048576 ? `${(n / 1048576).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1024))} KB`);

/** The period in the site's time zone (a month report reads 2026-03-01 00:00 — 2026-04-01 00:00 everywhere). */
function period(r) {
  const fmt = new Intl.DateTimeFormat("sv-SE", { timeZone: r.timezone || undefined, year: "numeric", month: "2-digit",
    day: "2-digit", hour: "2-digit", minute: "2-digit" });
  return `${fmt.format(new Date(r.period_start))} — ${fmt.format(new Date(r.period_end))}${r.timezone ? ` (${r.timezone})` : ""}`;
}

export async function download(id, filename) {
  const resp = await fetch(`/api/v1/reports/${id}/download`, { headers: { Authorization: `Bearer ${await accessToken()}` } });
  if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
  const url = URL.createObjectURL(await resp.blob());
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

export async function renderReports(view) {
  const [kinds, reports] = await Promise.all([api("/api/v1/reports/kinds"), list("/api/v1/reports?limit=200")]);
  const title = new Map(kinds.map((k) => [k.name, currentLang() === "en" ? k.title_en : k.title]));
  view.innerHTML = html`<h2>${t("reports.title")}</h2>
    ${reports.length ? "" : html`<p class="empty">${t("reports.none")}</p>`}
    <ul class="reports">${reports.map((r) => html`<li class="card report" data-report="${r.id}">
      <strong>${title.get(r.kind) || r.kind}</strong> <span class="meta">${r.site} · ${r.areas.join(", ")}</span>
      <div class="meta">${t("reports.period")}: ${period(r)}</div>
      <div class="meta">${t("reports.generated")}: ${formatTime(r.generated_at, true)} · ${r.format.toUpperCase()} ·
        ${sizeText(r.size_bytes)}</div>
      <div class="meta sha" title="SHA-256">SHA-256 ${r.sha256.slice(0, 16)}…</div>
      <button type="button" class="download" data-id="${r.id}" data-name="${r.filename}">${t("reports.download")}</button>
    </li>`)}</ul>`.text;
  for (const button of view.querySelectorAll("button.download")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      try { await download(button.dataset.id, button.dataset.name); } finally { button.disabled = false; }
    });
  }
}
