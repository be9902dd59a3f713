// Safe HTML templates: interpolated values are escaped unless wrapped in raw().

class Raw { constructor(text) { this.text = text; } toString() { return this.text; } }
export const raw = (text) => new Raw(text);

export function esc(value) {
  if (value instanceof Raw) return value.text;
  if (Array.isArray(value)) return value.map(esc).join("");
  if (value === null || value === undefined || value === false) return "";
  return String(value).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

export function html(strings, ...values) {
  let out = strings[0];
  values.forEach((v, i) => { out += esc(v) + strings[i + 1]; });
  return raw(out);
}
