// A small SVG line chart of readings around an alarm: the values, the alarm time, and its limit.

import { raw } from "./dom.js";

export function lineChart(series, { marker, limit, width = 360, height = 180 } = {}) {
  const pts = series.filter((p) => p.value !== null && p.value !== undefined);
  if (pts.length < 2) return null;
  const xs = pts.map((p) => Date.parse(p.time));
  const ys = pts.map((p) => p.value);
  if (typeof limit === "number") ys.push(limit);
  const x0 = Math.min(...xs, marker ?? Infinity);
  const x1 = Math.max(...xs, marker ?? -Infinity);
  let y0 = Math.min(...ys);
  let y1 = Math.max(...ys);
  if (y1 === y0) { y0 -= 1; y1 += 1; }
  const pad = { l: 44, r: 8, t: 8, b: 22 };
  const sx = (x) => pad.l + ((x - x0) / (x1 - x0 || 1)) * (width - pad.l - pad.r);
  const sy = (y) => height - pad.b - ((y - y0) / (y1 - y0)) * (height - pad.t - pad.b);
  const path = pts.map((p, i) => `${i ? "L" : "M"}${sx(xs[i]).toFixed(1)},${sy(p.value).toFixed(1)}`).join("");
  const fmt = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(1));
  const hhmm = (x) => new Date(x).toTimeString().slice(0, 5);
  const parts = [
    `<svg class="chart" viewBox="0 0 ${width} ${height}" role="img" preserveAspectRatio="none">`,
    `<line class="axis" x1="${pad.l}" y1="${height - pad.b}" x2="${width - pad.r}" y2="${height - pad.b}"/>`,
    `<text class="tick" x="${pad.l - 4}" y="${sy(y1) + 4}" text-anchor="end">${fmt(y1)}</text>`,
    `<text class="tick" x="${pad.l - 4}" y="${sy(y0)}" text-anchor="end">${fmt(y0)}</text>`,
    `<text class="tick" x="${pad.l}" y="${height - 6}">${hhmm(x0)}</text>`,
    `<text class="tick" x="${width - pad.r}" y="${height - 6}" text-anchor="end">${hhmm(x1)}</text>`,
  ];
  if (typeof limit === "number") {
    parts.push(`<line class="limit" x1="${pad.l}" x2="${width - pad.r}" y1="${sy(limit)}" y2="${sy(limit)}"/>`);
  }
  if (marker) parts.push(`<line class="marker" x1="${sx(marker)}" x2="${sx(marker)}" y1="${pad.t}" y2="${height - pad.b}"/>`);
  parts.push(`<path class="line" d="${path}"/></svg>`);
  return raw(parts.join(""));
}
