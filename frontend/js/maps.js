// Section 4: the saliency maps of a picked image, as a grid (rows: method and pathology; columns: style).
import { LEVEL_RE } from "./columns.js";
import { $, el } from "./dom.js";
import { tableContext } from "./detail.js";
import { allOptions, fieldId, readOption } from "./options.js";
import { rpc } from "./rpc.js";
import { state } from "./store.js";
import { trainedLabels } from "./weights.js";

const METHODS = ["gradcam", "gradcampp", "eigencam"];
export const CLASS_METHODS = new Set(["gradcam", "gradcampp"]);
const METHOD_NAMES = { gradcam: "Grad-CAM", gradcampp: "Grad-CAM++", eigencam: "Eigen-CAM" };
const STYLES = ["gray", "colormap", "overlay", "multiply"];
const STYLE_NAMES = { gray: "Grayscale", colormap: "Colormap", overlay: "Overlay", multiply: "Multiply" };
const MAP_SIZE = 256; // thumbnail size requested for each map (shown at about half, sharp on HiDPI screens)
const MAP_WINDOW = 1000; // read_table's largest page
const THUMB_CONCURRENCY = 4;

export function saliencyColumns(columns) {
  const lower = columns.map((c) => c.toLowerCase());
  const levels = columns
    .map((c, i) => ({ m: LEVEL_RE.exec(c), i }))
    .filter((x) => x.m)
    .sort((a, b) => Number(a.m[1]) - Number(b.m[1]))
    .map((x) => x.i);
  const at = (name) => lower.indexOf(name);
  return {
    levels,
    filename: at("filename"),
    pathology: at("pathology"),
    method: at("method"),
    style: at("style"),
    prediction: at("prediction"),
    path: at("path"),
  };
}

export function imageKey(row, cols) {
  return JSON.stringify([...cols.levels.map((i) => row[i]), cols.filename >= 0 ? row[cols.filename] : null]);
}

/**
 * Every listing row of one image.  The engine writes an image's maps as consecutive rows, so read a page of
 * the listing around the picked row and widen it while the image's rows reach its edge (read_table pages
 * hold at most 1000 rows).
 */
export async function mapsOfImage(absIndex, key, cols) {
  const cache = state.table.maps;
  if (cache.has(key)) return cache.get(key);
  const path = state.table.path;
  let total = state.table.total;
  const read = async (offset) => {
    const res = await rpc("read_table", { path, offset, limit: MAP_WINDOW });
    const columns = res.columns || [];
    if (Number.isInteger(res.total)) total = res.total;
    return (res.rows || []).map((r) => (Array.isArray(r) ? r : columns.map((c) => r[c])));
  };
  let start = Math.max(0, absIndex - MAP_WINDOW / 2);
  let rows = await read(start);
  let end = start + rows.length;
  while (start > 0 && rows.length && imageKey(rows[0], cols) === key) {
    const from = Math.max(0, start - MAP_WINDOW);
    rows = (await read(from)).slice(0, start - from).concat(rows);
    start = from;
  }
  while (end < total && rows.length && imageKey(rows[rows.length - 1], cols) === key) {
    const more = await read(end);
    if (!more.length) break;
    rows = rows.concat(more);
    end += more.length;
  }
  const mine = rows.filter((r) => imageKey(r, cols) === key);
  cache.set(key, mine);
  return mine;
}

const rank = (list, v) => {
  const i = list.indexOf(v);
  return i < 0 ? list.length : i;
};

export function fmtPrediction(v) {
  if (v === null || v === undefined || v === "" || !Number.isFinite(Number(v))) return null;
  return Number(v).toFixed(3);
}

/** A grid of the picked image's maps: rows = method (and pathology), columns = styles. */
export async function renderMaps(r, seq) {
  const { rows, columns, offset } = state.table;
  const row = rows[r];
  const cols = saliencyColumns(columns);
  const key = imageKey(row, cols);
  const wrap = $("maps-wrap");
  const caption = $("maps-caption");
  const ctx = tableContext();
  const imageName = [...cols.levels.map((i) => row[i]), row[cols.filename]].filter((x) => x !== null && x !== "").join("/");
  $("maps-title").textContent = `Saliency maps · ${ctx.weights || "unknown weights"}`;
  caption.textContent = `Loading the maps of ${imageName}…`;
  wrap.replaceChildren();
  let mine;
  try {
    mine = await mapsOfImage(offset + r, key, cols);
  } catch (err) {
    if (state.table.pickSeq !== seq) return;
    caption.textContent = "";
    wrap.replaceChildren(el("p", { class: "error-text", text: `The maps could not be listed: ${err.message}` }));
    return;
  }
  if (state.table.pickSeq !== seq) return;
  const groups = new Map();
  for (const m of mine) {
    const method = String(m[cols.method] ?? "");
    const pathology = m[cols.pathology] === null || m[cols.pathology] === undefined ? "" : String(m[cols.pathology]);
    const gk = `${method}\u0000${pathology}`;
    if (!groups.has(gk)) groups.set(gk, { method, pathology, prediction: m[cols.prediction], maps: new Map() });
    groups.get(gk).maps.set(String(m[cols.style] ?? ""), String(m[cols.path] ?? ""));
  }
  const ordered = [...groups.values()].sort((a, b) => rank(METHODS, a.method) - rank(METHODS, b.method));
  const styles = [...new Set(mine.map((m) => String(m[cols.style] ?? "")))].sort(
    (a, b) => rank(STYLES, a) - rank(STYLES, b),
  );
  if (!ordered.length) {
    caption.textContent = "";
    wrap.replaceChildren(el("p", { class: "muted", text: `No maps are listed for ${imageName}.` }));
    return;
  }
  const picked = {
    method: String(row[cols.method] ?? ""),
    pathology: row[cols.pathology] === null || row[cols.pathology] === undefined ? "" : String(row[cols.pathology]),
    style: String(row[cols.style] ?? ""),
  };
  const n = mine.length;
  caption.textContent = `${n} map${n === 1 ? "" : "s"} of ${imageName} · rows: method and pathology · columns: style; the picked map is outlined.`;
  const table = el("table", { class: "maps-grid" });
  table.append(el("caption", { class: "sr-only", text: `Saliency maps of ${imageName}` }));
  table.append(
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("th", { scope: "col", text: "Map" }),
        ...styles.map((st) => el("th", { scope: "col", text: STYLE_NAMES[st] || st })),
      ),
    ),
  );
  const tbody = el("tbody");
  const tasks = [];
  for (const g of ordered) {
    const methodName = METHOD_NAMES[g.method] || g.method;
    const pred = fmtPrediction(g.prediction);
    const head = el(
      "th",
      { scope: "row", class: "map-head" },
      el("span", { class: "map-method", text: methodName }),
      g.pathology ? el("span", { class: "map-pathology", text: g.pathology }) : null,
      el("span", {
        class: "map-pred",
        text: pred !== null ? `prediction ${pred}` : g.pathology ? "no prediction" : "one map per image",
      }),
    );
    const tr = el("tr", {}, head);
    for (const st of styles) {
      const path = g.maps.get(st);
      const current = g.method === picked.method && g.pathology === picked.pathology && st === picked.style;
      const frame = el("div", { class: "map-frame" }, el("span", { class: "muted small", text: path ? "…" : "—" }));
      const desc = `${methodName}${g.pathology ? ` · ${g.pathology}` : ""} · ${STYLE_NAMES[st] || st}${pred !== null ? ` · prediction ${pred}` : ""}`;
      tr.append(
        el(
          "td",
          { class: current ? "current" : null, "aria-current": current ? "true" : null },
          frame,
        ),
      );
      if (path) tasks.push({ path, frame, alt: desc });
    }
    tbody.append(tr);
  }
  table.append(tbody);
  wrap.replaceChildren(table);
  // bring the picked map into view inside the grid's own scroll area (the page itself does not move)
  const current = table.querySelector("td.current");
  if (current) {
    const box = wrap.getBoundingClientRect();
    const cell = current.getBoundingClientRect();
    const headH = table.tHead ? table.tHead.getBoundingClientRect().height : 0;
    if (cell.bottom > box.bottom || cell.top < box.top + headH) wrap.scrollTop += cell.top - box.top - headH - 8;
    if (cell.right > box.right || cell.left < box.left) wrap.scrollLeft += cell.left - box.left - 8;
  }
  await loadThumbnails(tasks, seq);
}

export async function loadThumbnails(tasks, seq) {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const t = tasks[next++];
      if (state.table.pickSeq !== seq) return;
      try {
        const res = await rpc("thumbnail", { path: t.path, size: MAP_SIZE });
        if (state.table.pickSeq !== seq) return;
        t.frame.replaceChildren(el("img", { src: res.data_url, alt: t.alt, title: t.path }));
      } catch (err) {
        if (state.table.pickSeq !== seq) return;
        t.frame.replaceChildren(el("span", { class: "error-text small", text: "Unavailable", title: err.message }));
      }
    }
  };
  await Promise.all(Array.from({ length: THUMB_CONCURRENCY }, worker));
}


/** How many PNG files each image gives, under the map styles (per-pathology methods × pathologies + the rest). */
export function updateMapsSummary() {
  const opts = allOptions();
  const [methods, styles, paths] = [opts.get("saliency_methods"), opts.get("styles"), opts.get("pathologies")];
  const summary = styles && $(`${fieldId(styles.name)}-summary`);
  if (!summary || !methods) return;
  const chosen = readOption(methods) || [];
  const k = paths ? (readOption(paths) || trainedLabels()).length : 1;
  const perImage = (chosen.filter((m) => CLASS_METHODS.has(m)).length * k + chosen.filter((m) => !CLASS_METHODS.has(m)).length) *
    (readOption(styles) || []).length;
  summary.textContent = perImage ? `${perImage} map${perImage === 1 ? "" : "s"} (PNG) per image.` : "";
}
