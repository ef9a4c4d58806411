// Section 4: the picked row's predictions as a bar chart (untrained heads hatched).
import { LEVEL_RE, PRED_RE } from "./columns.js";
import { curvesOf, renderCurves } from "./curves.js";
import { $, el, svg } from "./dom.js";
import { state } from "./store.js";
import { labelsOf } from "./weights.js";

export function renderChart(row, columns, ctx) {
  const box = $("chart");
  box.replaceChildren();
  const preds = [];
  columns.forEach((c, i) => {
    const m = PRED_RE.exec(c);
    if (m) preds.push({ head: Number(m[1]), col: c, value: row[i] });
  });
  preds.sort((a, b) => a.head - b.head);
  const weightsName = ctx.weights || $("weights").value;
  $("chart-title").textContent = `Predictions · ${weightsName || "unknown weights"}`;
  const curves = preds.length ? new Map() : curvesOf(row, columns);
  if (curves.size) {
    renderCurves(curves);
    return;
  }
  if (!preds.length) {
    $("chart-title").textContent = "Features";
    const features = columns.filter((c) => !LEVEL_RE.test(c) && !/^(filename|file_name|file|path)$/i.test(c)).length;
    box.append(
      el("p", {
        class: "muted",
        text: `This table has no prediction columns; its ${features} feature column${features === 1 ? "" : "s"} are in the table above.`,
      }),
    );
    return;
  }
  const labels = labelsOf(weightsName);
  const values = preds.map((p) => (p.value === null || p.value === "" ? Number.NaN : Number(p.value)));
  const finite = values.filter(Number.isFinite);
  const lo = Math.min(0, ...finite);
  const hi = Math.max(1, ...finite);
  const W = 560;
  const labelW = 200;
  const valueW = 86;
  const barX = labelW + 8;
  const barW = W - barX - valueW;
  const rowH = 22;
  const top = 8;
  const H = top + preds.length * rowH + 24;
  const x = (v) => barX + ((v - lo) / (hi - lo)) * barW;
  const chart = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "bar-chart",
    role: "img",
    "aria-labelledby": "chart-title chart-desc",
  });
  const desc = preds
    .map((p, k) => {
      const name = labels[p.head] || state.pathologyNames[p.head] || `head ${p.head}`;
      const v = Number.isFinite(values[k]) ? values[k].toFixed(3) : "no value";
      return `${name}: ${v}${labels[p.head] ? "" : " (untrained)"}`;
    })
    .join("; ");
  chart.append(svg("desc", { id: "chart-desc" }, desc));
  const defs = svg("defs");
  const pat = svg("pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
  pat.append(svg("rect", { width: 6, height: 6, class: "hatch-bg" }), svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, class: "hatch-line" }));
  defs.append(pat);
  chart.append(defs);
  // grid: 0, 0.5, 1 (and the extremes when the values leave [0, 1])
  const ticks = [...new Set([lo, 0, 0.5, 1, hi])].filter((t) => t >= lo && t <= hi).sort((a, b) => a - b);
  const gridBottom = top + preds.length * rowH;
  for (const t of ticks) {
    chart.append(svg("line", { x1: x(t), x2: x(t), y1: top - 2, y2: gridBottom, class: t === 0 ? "axis" : "grid" }));
    chart.append(svg("text", { x: x(t), y: gridBottom + 15, class: "tick", "text-anchor": "middle" }, String(Number(t.toFixed(2)))));
  }
  preds.forEach((p, k) => {
    const trained = Boolean(labels[p.head]);
    const name = labels[p.head] || state.pathologyNames[p.head] || `head ${p.head}`;
    const y = top + k * rowH;
    const v = values[k];
    const g = svg("g", { class: trained ? "bar trained" : "bar untrained" });
    g.append(svg("title", {}, `${p.col}: ${Number.isFinite(v) ? v : "no value"}${trained ? "" : " — untrained head"}`));
    g.append(svg("text", { x: labelW, y: y + rowH / 2 + 4, "text-anchor": "end", class: "label" }, trained ? name : `${name} (untrained)`));
    if (Number.isFinite(v)) {
      const x0 = x(Math.min(0, v));
      const x1 = x(Math.max(0, v));
      g.append(svg("rect", { x: x0, y: y + 4, width: Math.max(1, x1 - x0), height: rowH - 8, rx: 2, class: "fill" }));
      g.append(svg("text", { x: W - valueW + 8, y: y + rowH / 2 + 4, class: "value" }, v.toFixed(3)));
    } else {
      g.append(svg("text", { x: W - valueW + 8, y: y + rowH / 2 + 4, class: "value" }, "—"));
    }
    chart.append(g);
  });
  box.append(chart);
  const note = [];
  if (labels.some((l) => !l)) note.push("Hatched bars are untrained heads: their values carry no meaning.");
  if (ctx.guessed) note.push(`Label names are those of the selected weight set (${weightsName}).`);
  if (note.length) box.append(el("p", { class: "small muted", text: note.join(" ") }));
}

