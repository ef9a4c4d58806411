// Section 4: the picked row — its image and its predictions or maps.
import { renderChart } from "./chart.js";
import { LEVEL_RE } from "./columns.js";
import { markPicked } from "./dataset.js";
import { $, el, joinPath } from "./dom.js";
import { renderMaps } from "./maps.js";
import { rpc } from "./rpc.js";
import { state } from "./store.js";

export function tableContext() {
  // The table's own job (if it came from this page) knows its root and weights.
  let opts = null;
  if (state.lastJob && state.lastJob.output === state.table.path) opts = state.lastJob.options;
  else if (state.job && state.job.output === state.table.path) opts = state.job.options;
  // Otherwise the table's provenance file (listed by list_files) says which weights and folder made it.
  const file = (state.files || []).find((f) => f.path === state.table.path) || {};
  opts = opts || {};
  const weights = opts.weights || file.weights;
  return {
    input: opts.input || file.input || $("input-root").value.trim(),
    weights: weights || $("weights").value,
    guessed: !weights,
  };
}

export function imagePathOf(row) {
  const { columns } = state.table;
  const lower = columns.map((c) => c.toLowerCase());
  // (a saliency listing's `path` is the map, not the source image)
  const pathIdx = lower.findIndex((c) => (c === "path" && !state.table.saliency) || c === "image_path" || c === "filepath");
  if (pathIdx >= 0 && row[pathIdx]) return String(row[pathIdx]);
  const fileIdx = lower.findIndex((c) => c === "filename" || c === "file_name" || c === "file");
  if (fileIdx < 0 || !row[fileIdx]) return null;
  const levels = columns
    .map((c, i) => ({ m: LEVEL_RE.exec(c), i }))
    .filter((x) => x.m)
    .sort((a, b) => Number(a.m[1]) - Number(b.m[1]))
    .map((x) => row[x.i]);
  const ctx = tableContext();
  if (!ctx.input) return null;
  return joinPath(ctx.input, ...levels, row[fileIdx]);
}

export async function pickRow(r) {
  const { rows, columns, offset } = state.table;
  const row = rows[r];
  if (!row) return;
  state.table.picked = r;
  const seq = (state.table.pickSeq = (state.table.pickSeq || 0) + 1);
  for (const tr of $("result-table").querySelectorAll("tbody tr[data-row]")) {
    const on = Number(tr.dataset.row) === r;
    tr.classList.toggle("picked", on);
    tr.setAttribute("aria-selected", on ? "true" : "false");
  }
  $("detail").hidden = false;
  markPicked(offset + r);
  const ctx = tableContext();
  const saliency = state.table.saliency;
  $("chart-box").hidden = saliency;
  $("maps-box").hidden = !saliency;
  if (saliency) renderMaps(r, seq);
  else renderChart(row, columns, ctx);
  // the detail comes into view below the table (at 1280 × 800 it starts below the fold)
  $("detail").scrollIntoView({ block: "nearest" });
  const path = imagePathOf(row);
  await showImage(path, offset + r, seq);
}

/** The row's image: from its folder levels and file name, else (master table) asked from the backend. */
async function showImage(path, absRow, seq) {
  const frame = $("thumb-frame");
  const caption = $("thumb-caption");
  frame.classList.remove("empty");
  frame.replaceChildren(el("span", { class: "muted", text: "Loading image…" }));
  caption.textContent = path || "";
  try {
    const res = path
      ? await rpc("thumbnail", { path, size: 320 })
      : await rpc("row_image", { path: state.table.path, row: absRow, size: 320 });
    if (state.table.pickSeq !== seq) return;
    const shown = path || res.image || "";
    caption.textContent = shown;
    frame.replaceChildren(el("img", { src: res.data_url, alt: `Chest X-ray ${shown.split(/[\/]/).slice(-2).join("/")}` }));
  } catch (err) {
    if (state.table.pickSeq !== seq) return;
    frame.classList.add("empty");
    frame.replaceChildren(el("span", { class: "small", text: path ? `Image unavailable: ${err.message}` : `No image for this row: ${err.message}` }));
    caption.textContent = path || "";
  }
}
