// Hazardous-waste containers on the phone: the page a container's QR code opens (#/waste/containers/17), with its
// ledger history and the next step (generate, into storage, out of storage) in a few taps, and #/waste to open a
// container by its number (or with the camera where the browser has a barcode detector). Steps taken offline wait
// in the outbox with the time they were taken and are sent when the network returns.

import { api, Offline } from "./api.js";
import { html } from "./dom.js";
import { formatTime, t } from "./i18n.js";
import * as outbox from "./outbox.js";

const CACHE = "ehs.waste.container.";
// the steps a phone records after each stage (transfers go out with their manifest)
const NEXT = { null: ["generation"], generation: ["storage_in"], storage_in: ["storage_out"], storage_out: ["storage_in"] };

async function loadContainer(id) {
  try {
    const c = await api(`/api/v1/hazwaste/containers/${id}`);
    localStorage.setItem(CACHE + id, JSON.stringify(c));
    return { container: c, cached: false };
  } catch (err) {
    if (!(err instanceof Offline)) throw err;
    const cached = JSON.parse(localStorage.getItem(CACHE + id) || "null");
    if (!cached) throw err;
    return { container: cached, cached: true };
  }
}

async function facilities(site) {
  const key = `ehs.waste.facilities.${site}`;
  try {
    const list = (await api(`/api/v1/hazwaste/facilities?site=${encodeURIComponent(site)}`))
      .filter((f) => f.kind !== "generation" && f.kind !== "own_treatment");
    localStorage.setItem(key, JSON.stringify(list));
    return list;
  } catch (err) {
    if (err instanceof Offline) return JSON.parse(localStorage.getItem(key) || "[]");
    throw err;
  }
}

/** The container page. ``ctx``: {view, me, pending, refresh()}. */
export async function renderContainer(ctx, id) {
  const { container: c, cached } = await loadContainer(id);
  const queued = ctx.pending.filter((p) => p.kind === "waste_entry" && p.container_id === id);
  const next = NEXT[queued.length ? queued[queued.length - 1].entry.stage : c.stage] || [];
  const stores = next.includes("storage_in") ? await facilities(c.site) : [];
  ctx.view.innerHTML = html`
    <article class="card waste" data-container-id="${c.id}" data-stage="${c.stage || ""}">
      <h2><a href="#/waste" class="back">‹</a> ${c.code}</h2>
      <p><strong>${c.waste_name}</strong> · ${c.waste_code} · ${c.category}</p>
      <p>${t("waste.stage")}: <span id="stage">${c.stage ? t(`waste.stage.${c.stage}`) : "—"}</span>
        · ${t("waste.weight")}: ${c.weight_kg ?? "—"} kg ${c.facility ? html`· ${c.facility}` : ""}</p>
      ${cached ? html`<p class="muted">${t("net.offline")}</p>` : ""}
      <ol class="timeline" id="history">${(c.history || []).map((h) => html`
        <li data-batch="${h.batch_code}"><time>${formatTime(h.at)}</time> ${t(`waste.stage.${h.stage}`)}
          · ${h.batch_code} · ${h.quantity_kg} kg · ${h.handler}</li>`)}</ol>
      ${queued.length ? html`<p class="card queued" id="queued">${queued.map((p) => html`
        <span>${t(`waste.stage.${p.entry.stage}`)}: ${t(`outbox.status.${p.status}`)}</span> `)}</p>` : ""}
      ${next.length ? html`<form id="step" class="step">
        <label>${t("waste.next")}<select name="stage">${next.map((s) => html`
          <option value="${s}">${t(`waste.stage.${s}`)}</option>`)}</select></label>
        ${stores.length ? html`<label>${t("waste.facility")}<select name="facility">${stores.map((f) => html`
          <option value="${f.code}">${f.name} (${f.code})</option>`)}</select></label>` : ""}
        <label>${t("waste.weight")} (kg)<input name="quantity_kg" type="number" step="0.1" min="0" inputmode="decimal"
          ${c.stage ? "" : "required"}></label>
        <label>${t("waste.handler")}<input name="handler" required value="${ctx.me?.display_name || ctx.me?.name || ""}">
        </label>
        <p class="error" role="alert"></p>
        <button class="primary big" type="submit">${t("waste.record")}</button>
      </form>` : ""}
    </article>`.text;
  const form = document.getElementById("step");
  if (!form) return;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = new FormData(form);
    const entry = { stage: data.get("stage"), handler: data.get("handler"), at: new Date().toISOString() };
    if (data.get("facility")) entry.facility = data.get("facility");
    if (data.get("quantity_kg")) entry.quantity_kg = Number(data.get("quantity_kg"));
    const item = { kind: "waste_entry", container_id: id, entry, user: ctx.me?.name };
    try {
      const result = await outbox.submit(item);
      if (result.status === "conflict") form.querySelector(".error").textContent = result.detail || "";
    } catch (err) {
      form.querySelector(".error").textContent = err.message;
      return;
    }
    await ctx.refresh();
  });
}

/** Open a container by its number, a scanned address, or the camera. */
export function renderScan(ctx) {
  ctx.view.innerHTML = html`
    <form class="card" id="open-container">
      <h2>${t("waste.title")}</h2>
      <label>${t("waste.open")}<input name="id" required autocapitalize="off"></label>
      <button class="primary big" type="submit">${t("waste.go")}</button>
      ${"BarcodeDetector" in window ? html`<button type="button" id="camera">${t("waste.camera")}</button>
        <video id="video" playsinline hidden></video>` : ""}
    </form>`.text;
  const open = (text) => {
    const match = /containers\/(\d+)/.exec(text) || /^(\d+)$/.exec(text.trim());
    if (match) location.hash = `#/waste/containers/${match[1]}`;
  };
  document.getElementById("open-container").addEventListener("submit", (ev) => {
    ev.preventDefault();
    open(new FormData(ev.target).get("id"));
  });
  const camera = document.getElementById("camera");
  if (camera) camera.addEventListener("click", async () => {
    const video = document.getElementById("video");
    const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
    video.srcObject = stream;
    video.hidden = false;
    await video.play();
    const detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    const tick = async () => {
      const codes = await detector.detect(video).catch(() => []);
      if (codes.length) { stream.getTracks().forEach((tr) => tr.stop()); open(codes[0].rawValue); }
      else if (!video.hidden && location.hash === "#/waste") requestAnimationFrame(tick);
      else stream.getTracks().forEach((tr) => tr.stop());
    };
    tick();
  });
}
