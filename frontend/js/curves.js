// Section 4: a fractal row's curves against box size — lacunarity, fractal dimension and percolation — as small
// line charts (columns <prefix>_fractal_<measure>_r<box size>).
import { $, el, svg } from "./dom.js";

const CURVE_RE = /_fractal_([a-z_]+?)_r(\d+)$/i;
const NAMES = {
  lac: "Lacunarity Λ(r)",
  fd: "Fractal dimension",
  perc_clusters: "Percolation: clusters",
  perc_percolating: "Percolation: percolating boxes",
  perc_largest: "Percolation: largest cluster",
};

/** {measure: [{r, v}]} for the columns that are curves over box sizes; empty when the table has none. */
export function curvesOf(row, columns) {
  const curves = new Map();
  columns.forEach((c, i) => {
    const m = CURVE_RE.exec(c);
    if (!m) return;
    const v = row[i] === null || row[i] === "" ? Number.NaN : Number(row[i]);
    if (!curves.has(m[1])) curves.set(m[1], []);
    curves.get(m[1]).push({ r: Number(m[2]), v });
  });
  for (const pts of curves.values()) pts.sort((a, b) => a.r - b.r);
  return curves;
}

export function renderCurves(curves) {
  const box = $("chart");
  $("chart-title").textContent = "Fractal curves against box size r";
  const grid = el("div", { class: "curves" });
  for (const [measure, pts] of curves) grid.append(curveChart(NAMES[measure] || measure.replace(/_/g, " "), pts));
  box.append(grid);
  box.append(el("p", { class: "small muted", text: "Each point is one box size; empty values (images smaller than the box) are left out." }));
}

function curveChart(title, pts) {
  const W = 260;
  const H = 150;
  const pad = { l: 46, r: 10, t: 8, b: 28 };
  const finite = pts.filter((p) => Number.isFinite(p.v));
  const rs = pts.map((p) => p.r);
  const [r0, r1] = [Math.min(...rs), Math.max(...rs)];
  let [v0, v1] = finite.length ? [Math.min(...finite.map((p) => p.v)), Math.max(...finite.map((p) => p.v))] : [0, 1];
  if (v0 === v1) [v0, v1] = [v0 - 0.5, v1 + 0.5];
  const x = (r) => pad.l + ((r - r0) / (r1 - r0 || 1)) * (W - pad.l - pad.r);
  const y = (v) => H - pad.b - ((v - v0) / (v1 - v0)) * (H - pad.t - pad.b);
  const id = `curve-${title.replace(/[^A-Za-z]+/g, "-").toLowerCase()}`;
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "curve-chart", role: "img", "aria-labelledby": `${id}-t ${id}-d` });
  chart.append(svg("title", { id: `${id}-t` }, title));
  chart.append(svg("desc", { id: `${id}-d` }, finite.map((p) => `r ${p.r}: ${fmt(p.v)}`).join("; ") || "no values"));
  chart.append(svg("line", { x1: pad.l, x2: W - pad.r, y1: H - pad.b, y2: H - pad.b, class: "axis" }));
  chart.append(svg("line", { x1: pad.l, x2: pad.l, y1: pad.t, y2: H - pad.b, class: "axis" }));
  for (const v of [v0, v1]) chart.append(svg("text", { x: pad.l - 4, y: y(v) + 4, "text-anchor": "end", class: "tick" }, fmt(v)));
  for (const r of [r0, r1]) chart.append(svg("text", { x: x(r), y: H - pad.b + 14, "text-anchor": "middle", class: "tick" }, String(r)));
  chart.append(svg("text", { x: (pad.l + W - pad.r) / 2, y: H - 2, "text-anchor": "middle", class: "tick" }, "box size r"));
  if (finite.length > 1) chart.append(svg("polyline", { points: finite.map((p) => `${x(p.r)},${y(p.v)}`).join(" "), class: "curve" }));
  for (const p of finite) chart.append(svg("circle", { cx: x(p.r), cy: y(p.v), r: 2.5, class: "dot" }));
  return el("figure", { class: "curve-box" }, el("figcaption", { class: "small", text: title }), chart);
}

function fmt(v) {
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(0) : a >= 1 ? v.toFixed(2) : v.toPrecision(2);
}
