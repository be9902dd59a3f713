// Message catalogues (i18n/zh-CN.json, i18n/en.json): zh-CN by default, English on request.

const LANG_KEY = "ehs.lang";
export const LANGS = ["zh-CN", "en"];
let messages = {};
let lang = "zh-CN";

export function currentLang() { return lang; }

export async function loadLang(base, wanted) {
  lang = LANGS.includes(wanted) ? wanted : (localStorage.getItem(LANG_KEY) || "zh-CN");
  if (!LANGS.includes(lang)) lang = "zh-CN";
  const resp = await fetch(`${base}i18n/${lang}.json`);
  messages = await resp.json();
  document.documentElement.lang = lang;
  return lang;
}

export function setLang(value) { localStorage.setItem(LANG_KEY, value); }

/** The message ``key`` with ``{name}`` placeholders filled in; the key itself when it is missing. */
export function t(key, vars = {}) {
  const text = messages[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? String(vars[name]) : `{${name}}`));
}

/** The English or Chinese variant of a record's field (``title`` / ``title_en``). */
export function pick(obj, field) {
  if (!obj) return "";
  return (lang === "en" && obj[`${field}_en`]) || obj[field] || obj[`${field}_en`] || "";
}

export function formatTime(value, withDate = false) {
  if (!value) return "";
  const d = new Date(value);
  const opts = withDate ? { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit" }
    : { hour: "2-digit", minute: "2-digit", second: "2-digit" };
  return d.toLocaleString(lang, { hour12: false, ...opts });
}
