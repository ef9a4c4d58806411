// "Fit a classifier" panel of Extracted data: radfeat fit on the table shown, as a job (fit_model),
// then its cross-validated metrics and the out-of-fold ROC curves drawn here from predictions.csv.
import { $, el, svg } from "./dom.js";
import { rpc } from "./rpc.js";

const METRICS = ["auc", "accuracy", "sensitivity", "specificity"];
const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
let polling = null;

function fitOptions() {
  const opts = {
    table: $("result-file").value || "",
    target: $("fit-target").value.trim(),
    folds: Number.parseInt($("fit-folds").value, 10),
    models: [...document.querySelectorAll("input[name=fit-model]:checked")].map((i) => i.value),
  };
  const labels = $("fit-labels").value.trim();
  const columns = $("fit-columns").value.trim();
  const name = $("fit-name").value.trim();
  if (labels) opts.labels = labels;
  if (columns) opts.columns = columns.split(",").map((s) => s.trim()).filter(Boolean);
  if (name) opts.name = name;
  return opts;
}

function showProblems(problems) {
  $("fit-problem").textContent = (problems || []).map((p) => p.message).join(" · ");
}

async function startFit() {
  showProblems([]);
  $("fit-result").replaceChildren();
  const opts = fitOptions();
  try {
    const check = await rpc("validate_fit", { options: opts });
    if (!check.valid) return showProblems(check.problems);
    const job = await rpc("fit_model", { options: opts });
    $("fit-run").disabled = true;
    $("fit-status").textContent = "Fitting…";
    polling = setInterval(() => pollFit(job.job_id), 500);
  } catch (err) {
    showProblems(err.data && err.data.problems ? err.data.problems : [{ message: err.message }]);
  }
}

async function pollFit(jobId) {
  let st;
  try {
    st = await rpc("job_status", { job_id: jobId, log_lines: 1 });
  } catch (err) {
    st = { state: "failed", error: err.message };
  }
  if (st.state === "queued" || st.state === "running") {
    $("fit-status").textContent = `Fitting: ${st.done || 0} of ${st.total || "?"} steps. ${(st.log || [""])[0]}`;
    return;
  }
  clearInterval(polling);
  $("fit-run").disabled = false;
  if (st.state !== "done") {
    $("fit-status").textContent = "";
    return showProblems(st.problems || [{ message: st.error || `Fit ${st.state}` }]);
  }
  $("fit-status").textContent = `Done: ${st.summary.output_dir}`;
  await showFit(st.summary.output_dir);
}

function ciText(s) {
  if (!s || s.mean === null) return "n/a";
  const ci = s.ci_low === null ? "" : ` (${s.ci_low.toFixed(3)}–${s.ci_high.toFixed(3)})`;
  return `${s.mean.toFixed(3)}${ci}`;
}

/** Metrics table and ROC curves of the fit in ``folder`` (DATA/models/<name>). */
export async function showFit(folder) {
  const listed = await rpc("list_fitted_models");
  const fit = listed.models.find((m) => m.folder === folder) || listed.models[0];
  if (!fit) return;
  const kinds = Object.keys(fit.models);
  const table = el("table", { class: "data-table fit-metrics", "aria-label": "Cross-validated metrics" });
  table.append(el("tr", {}, el("th", { text: "model" }), ...METRICS.map((m) => el("th", { text: `${m} (95% CI)` }))));
  for (const kind of kinds) {
    const s = fit.models[kind].summary || {};
    table.append(el("tr", {}, el("td", { text: kind }), ...METRICS.map((m) => el("td", { text: ciText(s[m]) }))));
  }
  const preds = await readAll(fit.predictions);
  $("fit-result").replaceChildren(
    el("p", { class: "small", text: `${fit.name}: ${fit.target} = ${fit.classes[1]}, grouped by patient. ` +
      `Heads: ${kinds.map((k) => fit.models[k].head).join(", ")}` }),
    table, rocPlot(preds, kinds, fit));
}

async function readAll(path) {
  const first = await rpc("read_table", { path, limit: 1000 });
  const rows = [...first.rows];
  while (rows.length < Math.min(first.total, 50000)) {
    const page = await rpc("read_table", { path, offset: rows.length, limit: 1000 });
    if (!page.rows.length) break;
    rows.push(...page.rows);
  }
  return { columns: first.columns, rows };
}

function rocPoints(truth, scores) {
  const order = scores.map((s, i) => i).sort((a, b) => scores[b] - scores[a]);
  const pos = truth.filter(Boolean).length;
  const neg = truth.length - pos;
  const pts = [[0, 0]];
  let tp = 0;
  let fp = 0;
  order.forEach((i, k) => {
    if (truth[i]) tp += 1;
    else fp += 1;
    if (k === order.length - 1 || scores[order[k + 1]] !== scores[i]) pts.push([fp / (neg || 1), tp / (pos || 1)]);
  });
  return pts;
}

function rocPlot(preds, kinds, fit) {
  const size = 260;
  const pad = 30;
  const plot = svg("svg", { viewBox: `0 0 ${size + pad + 10} ${size + pad + 10}`, class: "fit-roc", role: "img",
    "aria-label": `Out-of-fold ROC curves of ${kinds.join(" and ")}` });
  const x = (f) => pad + f * size;
  const y = (t) => 10 + (1 - t) * size;
  plot.append(svg("rect", { x: pad, y: 10, width: size, height: size, fill: "none", stroke: "#333" }));
  plot.append(svg("line", { x1: x(0), y1: y(0), x2: x(1), y2: y(1), stroke: "#999", "stroke-dasharray": "4 4" }));
  plot.append(svg("text", { x: pad + size / 2, y: size + pad + 8, "text-anchor": "middle", "font-size": 11 }, "1 − specificity"));
  plot.append(svg("text", { x: 10, y: 10 + size / 2, "font-size": 11, transform: `rotate(-90 10 ${10 + size / 2})`,
    "text-anchor": "middle" }, "sensitivity"));
  const target = preds.columns.indexOf("target");
  const truth = preds.rows.map((r) => r[target] === fit.classes[1]);
  kinds.forEach((kind, k) => {
    const col = preds.columns.indexOf(`score_${kind}`);
    const pts = rocPoints(truth, preds.rows.map((r) => Number(r[col])));
    plot.append(svg("polyline", { points: pts.map(([f, t]) => `${x(f)},${y(t)}`).join(" "), fill: "none",
      stroke: COLOURS[k % COLOURS.length], "stroke-width": 2 }));
    plot.append(svg("text", { x: x(0.45), y: y(0.12 + 0.08 * k), "font-size": 11, fill: COLOURS[k % COLOURS.length] },
      `${kind}: pooled AUC ${Number(fit.models[kind].pooled_auc).toFixed(3)}`));
  });
  return plot;
}

export function wireFit() {
  $("fit-run").addEventListener("click", startFit);
}
