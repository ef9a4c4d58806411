// Small DOM and formatting helpers shared by every section of the page.

export const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";
export const NAN_RE = /^[-+]?(nan|inf|infinity)$/i;

export function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

export function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

export function plural(n, word, many = `${word}s`) {
  return `${n} ${n === 1 ? word : many}`;
}

export function intOrRaw(value) {
  const s = String(value).trim();
  return /^-?\d+$/.test(s) ? Number.parseInt(s, 10) : s;
}

export function fmtDuration(s) {
  if (s === null || s === undefined || !Number.isFinite(Number(s))) return "—";
  s = Math.max(0, Math.round(Number(s)));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

export function fmtSeconds(s) {
  const v = Number(s);
  return v < 60 ? `${v.toFixed(1)} s` : fmtDuration(v);
}

export function fmtSize(bytes) {
  if (!bytes && bytes !== 0) return "";
  const units = ["B", "KB", "MB", "GB"];
  let v = Number(bytes);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

export function fmtCell(v) {
  if (v === null || v === undefined || v === "") return "";
  if (typeof v === "string" && NAN_RE.test(v.trim())) return "NaN";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    if (!Number.isFinite(v)) return String(v);
    return Math.abs(v) >= 1000 ? v.toFixed(1) : v.toFixed(4);
  }
  return String(v);
}

export function joinPath(...parts) {
  const cleaned = parts.filter((p) => p !== null && p !== undefined && String(p) !== "").map(String);
  if (!cleaned.length) return "";
  const [first, ...rest] = cleaned;
  const head = first.replace(/[\\/]+$/, "") || first.slice(0, 1);
  return [head, ...rest.map((p) => p.replace(/^[\\/]+|[\\/]+$/g, ""))].join("/");
}

export function checkedValues(name) {
  return [...document.querySelectorAll(`input[name="${name}"]`)].filter((i) => i.checked && !i.disabled).map((i) => i.value);
}

export function setChecked(name, values) {
  for (const i of document.querySelectorAll(`input[name="${name}"]`)) i.checked = values.includes(i.value);
}
