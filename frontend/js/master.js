// Section 2: the master table (MEDprofiles layout): dates CSV, its columns, the patient level.
import { $, debounce, el, fmtCell } from "./dom.js";
import { rpc } from "./rpc.js";
import { state } from "./store.js";
import { scheduleValidate } from "./validate.js";

const FOLDERS_DELAY_MS = 300;

export function masterOn() {
  return $("master-toggle").checked;
}

export const inspectDates = debounce(async () => {
  const path = $("dates-csv").value.trim();
  const fileSel = $("filename-col");
  const dateSel = $("date-col");
  if (!path) {
    setDateColumns([]);
    $("dates-preview").hidden = true;
    scheduleValidate();
    return;
  }
  try {
    const res = await rpc("inspect_dates", { path, sample: 5 });
    if ($("dates-csv").value.trim() !== path) return;
    setDateColumns(res.columns || []);
    if (!fileSel.value) fileSel.value = guessColumn(res.columns, /(file|image|img|jpg|name)/i, "");
    if (!dateSel.value) dateSel.value = guessColumn(res.columns, /(date|time|day|_at$|taken|when)/i, fileSel.value);
    if (!dateSel.value && fileSel.value && res.columns.length === 2) {
      dateSel.value = res.columns.find((c) => c !== fileSel.value);
    }
    renderDatesPreview(res);
  } catch {
    if ($("dates-csv").value.trim() !== path) return;
    setDateColumns([]);
    $("dates-preview").hidden = true;
    // the reason is shown next to the field by validate_options
  }
  scheduleValidate();
}, FOLDERS_DELAY_MS);

export function guessColumn(columns, re, avoid) {
  const hit = (columns || []).find((c) => re.test(c) && c !== avoid);
  return hit || "";
}

export function setDateColumns(columns) {
  state.datesColumns = columns;
  for (const id of ["filename-col", "date-col"]) {
    const sel = $(id);
    const prev = sel.value;
    sel.replaceChildren(el("option", { value: "", text: columns.length ? "Choose a column…" : "—" }));
    for (const c of columns) sel.append(el("option", { value: c, text: c }));
    sel.value = columns.includes(prev) ? prev : "";
    sel.disabled = !columns.length;
  }
}

export function renderDatesPreview(res) {
  const table = $("dates-preview-table");
  const cols = res.columns || [];
  const sample = res.sample || [];
  table.replaceChildren();
  if (!cols.length) {
    $("dates-preview").hidden = true;
    return;
  }
  table.append(el("thead", {}, el("tr", {}, ...cols.map((c) => el("th", { scope: "col", text: c })))));
  const tbody = el("tbody");
  for (const row of sample) {
    const cells = Array.isArray(row) ? row : cols.map((c) => row[c]);
    tbody.append(el("tr", {}, ...cells.map((v) => el("td", { text: fmtCell(v) }))));
  }
  table.append(tbody);
  const n = res.rows ?? sample.length;
  $("dates-preview-caption").textContent = `${n} row${n === 1 ? "" : "s"} · first ${sample.length} shown`;
  $("dates-preview").hidden = false;
}

