// Section 4: the dataset view beside the table — a 2-D map of the rows' features (PCA, or UMAP when installed),
// computed by the backend and streamed in pages, drawn on a canvas; coloured by a prediction, the patient or any
// identifying column; hover names the image, click shows that row; outliers outlined; a histogram per column.
import { $, debounce, el, plural } from "./dom.js";
import { BUCKETS, CATEGORICAL, OUTLIER_SD, GridIndex, continuousPalette, drawHistogram, drawScatter, fitCanvas, outliersOf, robustBounds, viewOf } from "./plot.js";
import { rpc } from "./rpc.js";
import { labelsOf } from "./weights.js";

const PAGE = 20000;
const HEIGHT = 380;
const ds = { seq: 0, path: "", info: null, pts: { xs: new Float32Array(0), ys: new Float32Array(0), n: 0 }, view: null,
  index: null, colorIndex: null, palette: [], outliers: [], names: null, namesLoading: null, picked: -1 };
let goToRow = async () => {};

export function setDatasetHooks(h) {
  goToRow = h.goToRow;
}

/** What the view should show for the table at `path` (called when another table is loaded). */
export async function loadDataset(path, weightsName) {
  const seq = ++ds.seq;
  Object.assign(ds, { path, info: null, colorIndex: null, names: null, namesLoading: null, outliers: [], picked: -1 });
  ds.pts = { xs: new Float32Array(0), ys: new Float32Array(0), n: 0 };
  showView(false);
  let info;
  try {
    info = await rpc("table_info", { path });
  } catch {
    return; // an older backend or a table it cannot read: the table alone
  }
  if (seq !== ds.seq) return;
  const kinds = Object.values(info.kinds || {});
  if (kinds.filter(isFeature).length < 2 || !info.total) return;
  ds.info = { ...info, weights: weightsName };
  showView(true);
  fillChoices(info, weightsName);
  await loadPoints(seq);
  if (seq === ds.seq) await Promise.all([loadColour(seq), loadHistogram(seq)]);
}

/** A numeric column of the image's features (not an identifier, a text or a prediction). */
const isFeature = (kind) => !["id", "text", "prediction"].includes(kind);

function showView(on) {
  $("dataset").hidden = !on;
  document.querySelector(".results-grid").classList.toggle("with-dataset", on);
}

function labelOf(column, weightsName) {
  const m = /predictions?_(\d+)$/i.exec(column);
  const name = m ? labelsOf(weightsName)[Number(m[1])] : "";
  return name ? `${name} (${column})` : column;
}

function fillChoices(info, weightsName) {
  const kinds = info.kinds || {};
  const preds = info.columns.filter((c) => kinds[c] === "prediction");
  const ids = info.columns.filter((c) => (kinds[c] === "id" || kinds[c] === "text") && !/^(filename|path)$/i.test(c));
  const colour = $("color-by");
  colour.replaceChildren(el("option", { value: "", text: "Nothing (one colour)" }));
  for (const c of ids) colour.append(el("option", { value: c, text: /^level_1$/i.test(c) ? `Patient (${c})` : c }));
  for (const c of preds) colour.append(el("option", { value: c, text: labelOf(c, weightsName) }));
  const trained = preds.find((c) => labelOf(c, weightsName) !== c); // a head the weights were trained for
  colour.value = trained || ids[0] || "";
  const hist = $("hist-col");
  const numeric = preds.length ? preds : info.columns.filter((c) => isFeature(kinds[c])).slice(0, 200);
  hist.replaceChildren(...numeric.map((c) => el("option", { value: c, text: labelOf(c, weightsName) })));
}

/** The map, with the plot marked busy (aria-busy, progress cursor) until its points are in. */
async function loadPoints(seq) {
  const wrap = $("scatter-wrap");
  wrap.setAttribute("aria-busy", "true");
  try {
    await fetchPoints(seq);
  } finally {
    if (seq === ds.seq) wrap.removeAttribute("aria-busy");
  }
}

async function fetchPoints(seq) {
  const path = ds.path;
  const method = $("proj-method").value;
  const status = $("dataset-status");
  const t0 = performance.now();
  let offset = 0;
  let total = ds.info.total;
  let first = null;
  let columns = Object.values(ds.info.kinds).includes("feature") ? "dense" : "all";
  status.textContent = `Computing the ${method.toUpperCase()} map of ${plural(total, "row")}…`;
  ds.pts = { xs: new Float32Array(total), ys: new Float32Array(total), n: 0 };
  ds.bounds = null;
  while (offset < total) {
    let res;
    try {
      res = await rpc("project_table", { path, method, columns, offset, limit: PAGE });
    } catch (err) {
      if (seq !== ds.seq) return;
      if (columns === "dense" && offset === 0) {
        columns = "all"; // no dense block in this table: every feature column
        continue;
      }
      status.textContent = `The map could not be computed: ${err.message}`;
      return;
    }
    if (seq !== ds.seq) return;
    if (first === null) first = { ms: performance.now() - t0, res };
    if (res.total !== total) {
      total = res.total;
      ds.pts = { xs: new Float32Array(total), ys: new Float32Array(total), n: 0 };
    }
    res.points.forEach(([x, y], k) => {
      ds.pts.xs[offset + k] = x;
      ds.pts.ys[offset + k] = y;
    });
    offset += res.points.length;
    ds.pts.n = offset;
    if (!res.points.length) break;
    status.textContent = `${method.toUpperCase()} map: ${offset} of ${total} points…`;
    redraw();
  }
  ds.outliers = outliersOf(ds.pts);
  ds.bounds = robustBounds(ds.pts.xs, ds.pts.ys, ds.pts.n);
  redraw();
  const canvas = $("scatter");
  canvas.dataset.points = String(ds.pts.n);
  canvas.dataset.firstPageMs = String(Math.round(first ? first.ms : 0));
  canvas.dataset.allMs = String(Math.round(performance.now() - t0));
  const ratio = first && first.res.explained_variance_ratio;
  const explained = Array.isArray(ratio) && ratio.length >= 2
    ? ` (axes explain ${(ratio[0] * 100).toFixed(1)} % and ${(ratio[1] * 100).toFixed(1)} % of the variance)` : "";
  status.textContent = `${method.toUpperCase()} map of ${plural(ds.pts.n, "row")}${explained}. Hover a point for its image name, click it to show the row.`;
  canvas.setAttribute("aria-label", `${method.toUpperCase()} map of ${plural(ds.pts.n, "row")}; ${plural(ds.outliers.length, "outlier")} outlined in red`);
  renderOutliers();
}

function redraw() {
  const canvas = $("scatter");
  if ($("dataset").hidden) return;
  const { ctx, width, height } = fitCanvas(canvas, HEIGHT);
  ds.view = viewOf(ds.pts.xs, ds.pts.ys, ds.pts.n, width, height, ds.bounds);
  drawScatter(ctx, width, height, ds.pts, ds.view, ds.colorIndex, ds.palette, ds.outliers, ds.picked);
  ds.index = null; // rebuilt on the next hover
}

async function columnValues(column, seq) {
  const out = [];
  const total = ds.info.total;
  while (out.length < total) {
    const res = await rpc("column_values", { path: ds.path, column, offset: out.length, limit: PAGE });
    if (seq !== ds.seq) return null;
    if (!res.values.length) break;
    out.push(...res.values);
  }
  return out;
}

async function loadColour(seq) {
  const column = $("color-by").value;
  const legend = $("scatter-legend");
  if (!column) {
    Object.assign(ds, { colorIndex: null, palette: [] });
    legend.textContent = "";
    redraw();
    return;
  }
  let values;
  try {
    values = await columnValues(column, seq);
  } catch (err) {
    legend.textContent = `Colours unavailable: ${err.message}`;
    return;
  }
  if (!values) return;
  const numeric = values.every((v) => v === null || typeof v === "number");
  const idx = new Uint8Array(values.length);
  if (numeric) {
    const finite = values.filter(Number.isFinite);
    const lo = Math.min(...finite);
    const hi = Math.max(...finite);
    values.forEach((v, i) => {
      idx[i] = Number.isFinite(v) ? Math.min(BUCKETS - 1, Math.floor(((v - lo) / (hi - lo || 1)) * BUCKETS)) : 255;
    });
    ds.palette = continuousPalette();
    legend.textContent = `Colour: ${$("color-by").selectedOptions[0].text}, from ${lo.toPrecision(3)} (dark purple) to ${hi.toPrecision(3)} (yellow).`;
  } else {
    const counts = new Map();
    for (const v of values) counts.set(String(v), (counts.get(String(v)) || 0) + 1);
    const top = [...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, CATEGORICAL.length).map(([k]) => k);
    values.forEach((v, i) => {
      const k = top.indexOf(String(v));
      idx[i] = k < 0 ? 255 : k;
    });
    ds.palette = CATEGORICAL.slice(0, top.length);
    const rest = counts.size - top.length;
    legend.textContent = `Colour: ${column} — ${top.join(", ")}${rest > 0 ? `; ${rest} other values in grey` : ""}.`;
  }
  ds.colorIndex = idx;
  redraw();
}

async function loadHistogram(seq) {
  const column = $("hist-col").value;
  if (!column) return;
  let values;
  try {
    values = await columnValues(column, seq);
  } catch (err) {
    $("hist-caption").textContent = `Histogram unavailable: ${err.message}`;
    return;
  }
  if (!values) return;
  const { ctx, width, height } = fitCanvas($("histogram"), 140);
  const h = drawHistogram(ctx, width, height, values.map((v) => (v === null ? Number.NaN : Number(v))));
  const text = `${$("hist-col").selectedOptions[0].text}: ${plural(values.length - h.nan, "value")} from ${h.lo.toPrecision(3)} to ${h.hi.toPrecision(3)}${h.nan ? `, ${h.nan} empty` : ""}.`;
  $("hist-caption").textContent = text;
  $("histogram").setAttribute("aria-label", `Histogram of ${text}`);
}

async function names() {
  if (ds.names) return ds.names;
  if (!ds.namesLoading) {
    const cols = ds.info.columns;
    const column = cols.find((c) => /^filename$/i.test(c)) || cols.find((c) => ds.info.kinds[c] === "id") || cols[0];
    ds.namesLoading = columnValues(column, ds.seq).then((v) => (ds.names = v || []));
  }
  return ds.namesLoading;
}

async function renderOutliers() {
  const box = $("outliers");
  box.replaceChildren();
  if (!ds.outliers.length) return;
  const shown = ds.outliers.slice(0, 10);
  const list = await names();
  const ul = el("ul", { class: "outlier-list" });
  for (const i of shown) {
    ul.append(el("li", {}, el("button", { type: "button", class: "linklike", onclick: () => goToRow(i), text: `Row ${i + 1}: ${list[i] ?? ""}` })));
  }
  box.append(el("p", { class: "small", text: `${plural(ds.outliers.length, "row")} far from the rest (over ${OUTLIER_SD} robust standard deviations from the centre of the map), outlined in red${ds.outliers.length > 10 ? "; the first 10:" : ":"}` }), ul);
}

/** Mark the row picked in the table (absolute index) on the map. */
export function markPicked(row) {
  if ($("dataset").hidden || !ds.pts.n) return;
  ds.picked = row;
  redraw();
}

function pointAt(ev) {
  if (!ds.view || !ds.pts.n) return -1;
  if (!ds.index) ds.index = new GridIndex(ds.pts, ds.view);
  const box = $("scatter").getBoundingClientRect();
  return ds.index.nearest(ev.clientX - box.left, ev.clientY - box.top);
}

export function wireDataset() {
  const canvas = $("scatter");
  const tip = $("scatter-tip");
  canvas.addEventListener("mousemove", async (ev) => {
    const i = pointAt(ev);
    if (i < 0) {
      tip.hidden = true;
      return;
    }
    const list = await names();
    tip.textContent = `Row ${i + 1}: ${list[i] ?? ""}`;
    tip.style.left = `${ev.offsetX + 12}px`;
    tip.style.top = `${ev.offsetY + 12}px`;
    tip.hidden = false;
  });
  canvas.addEventListener("mouseleave", () => {
    tip.hidden = true;
  });
  canvas.addEventListener("click", (ev) => {
    const i = pointAt(ev);
    if (i >= 0) goToRow(i);
  });
  $("color-by").addEventListener("change", () => loadColour(ds.seq));
  $("hist-col").addEventListener("change", () => loadHistogram(ds.seq));
  $("proj-method").addEventListener("change", async () => {
    const seq = ++ds.seq;
    await loadPoints(seq);
  });
  window.addEventListener("resize", debounce(redraw, 150));
}
