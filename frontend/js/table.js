// Section 4: the list of extracted tables and the paged table with sticky identifying columns.
import { DENSE_RE, FEATURE_RE, LEVEL_RE, PRED_RE, SALIENCY_COLUMNS } from "./columns.js";
import { $, NAN_RE, el, fmtCell, fmtSize } from "./dom.js";
import { loadDataset } from "./dataset.js";
import { pickRow, tableContext } from "./detail.js";
import { rpc } from "./rpc.js";
import { showError } from "./status.js";
import { state } from "./store.js";
import { labelsOf } from "./weights.js";

export const PAGE_SIZE = 50;

export async function refreshFiles(preferred = null) {
  const sel = $("result-file");
  const keep = preferred || sel.value;
  let files = [];
  try {
    const res = await rpc("list_files");
    files = res.files || [];
    if (res.workspace) $("workspace").textContent = res.workspace;
  } catch (err) {
    if (preferred === null) showError("Could not list the extracted tables", err);
  }
  state.files = files;
  const paths = files.map((f) => f.path);
  if (keep && !paths.includes(keep)) files.unshift({ name: keep.split(/[\\/]/).pop(), path: keep });
  sel.replaceChildren();
  if (!files.length) sel.append(el("option", { value: "", text: "No table yet" }));
  for (const f of files) {
    const extra = f.size ? ` · ${fmtSize(f.size)}` : "";
    sel.append(el("option", { value: f.path, text: `${f.name}${extra}`, title: f.path }));
  }
  if (keep && [...sel.options].some((o) => o.value === keep)) sel.value = keep;
  if ($("table-toggle").checked && sel.value && (preferred || sel.value !== state.table.path)) {
    loadTable(sel.value, 0);
  }
}

/** Show the table panel with the table at `path` (a finished run's table, the unmatched list…). */
export function showTable(path) {
  $("table-toggle").checked = true;
  $("table-panel").hidden = false;
  refreshFiles(path);
}

export async function loadTable(path, offset) {
  const seq = ++state.table.seq;
  $("table-summary").textContent = "Loading…";
  try {
    const res = await rpc("read_table", { path, offset, limit: PAGE_SIZE });
    if (seq !== state.table.seq) return;
    const columns = res.columns || [];
    const rows = (res.rows || []).map((r) => (Array.isArray(r) ? r : columns.map((c) => r[c])));
    const pathChanged = path !== state.table.path;
    Object.assign(state.table, { path, offset, total: res.total ?? rows.length, columns, rows, picked: -1 });
    state.table.saliency = SALIENCY_COLUMNS.every((c) => columns.map((x) => x.toLowerCase()).includes(c));
    if (pathChanged || offset === 0) state.table.maps = new Map(); // a new table, or the same one re-run
    if (pathChanged) loadDataset(path, tableContext().weights);
    renderTable();
    if (pathChanged || !$("detail").hidden) {
      $("detail").hidden = true;
    }
  } catch (err) {
    if (seq !== state.table.seq) return;
    Object.assign(state.table, { path, offset: 0, total: 0, columns: [], rows: [], picked: -1, saliency: false });
    $("result-table").replaceChildren();
    $("table-summary").textContent = "";
    $("page-info").textContent = "";
    showError("The table could not be read", err);
  }
}

export function visibleColumns() {
  const hideDense = $("hide-dense").checked;
  return state.table.columns.map((c, i) => i).filter((i) => !(hideDense && DENSE_RE.test(state.table.columns[i])));
}

export function stickyCount(columns) {
  let n = 0;
  for (const c of columns) {
    if (DENSE_RE.test(c) || PRED_RE.test(c) || FEATURE_RE.test(c)) break;
    if (state.table.saliency && !(LEVEL_RE.test(c) || c.toLowerCase() === "filename")) break; // the image's own columns
    n += 1;
  }
  // a narrow window keeps the row number and one identifying column pinned, so the values stay visible
  return Math.min(n, window.innerWidth < 700 ? 1 : 4);
}

export function renderTable() {
  const { columns, rows, offset, total } = state.table;
  const table = $("result-table");
  table.setAttribute("aria-rowcount", String(total + 1));
  const idx = visibleColumns();
  const sticky = stickyCount(idx.map((i) => columns[i]));
  const labels = labelsOf(tableContext().weights);
  table.replaceChildren();
  const headRow = el("tr", {}, el("th", { scope: "col", class: "rownum sticky", "data-sticky": "0", text: "#" }));
  idx.forEach((ci, k) => {
    const isSticky = k < sticky;
    const m = PRED_RE.exec(columns[ci]);
    const label = m && labels.length ? labels[Number(m[1])] || "untrained" : "";
    headRow.append(
      el(
        "th",
        {
          scope: "col",
          class: isSticky ? "sticky" : null,
          "data-sticky": isSticky ? String(k + 1) : null,
          title: label ? `${columns[ci]} — ${label}` : columns[ci],
        },
        columns[ci],
        label ? el("span", { class: `col-sub${label === "untrained" ? " untrained" : ""}`, text: label }) : null,
      ),
    );
  });
  table.append(el("thead", {}, headRow));
  const tbody = el("tbody");
  rows.forEach((row, r) => {
    const tr = el("tr", {
      tabindex: r === 0 ? "0" : "-1", // one tab stop for the grid; the arrow keys move between rows
      "data-row": String(r),
      "aria-rowindex": String(offset + r + 2),
      "aria-selected": "false",
      "aria-label": `Row ${offset + r + 1}: ${rowTitle(row)}. Press Enter to show ${
        state.table.saliency ? "the saliency maps of its image" : "its image and predictions"
      }.`,
    });
    tr.append(el("th", { scope: "row", class: "rownum sticky", "data-sticky": "0", text: String(offset + r + 1) }));
    idx.forEach((ci, k) => {
      const isSticky = k < sticky;
      const v = row[ci];
      const nan = typeof v === "string" && NAN_RE.test(v.trim());
      tr.append(
        el("td", {
          class: [isSticky ? "sticky" : "", typeof v === "number" || nan ? "num" : "", nan ? "nan" : ""].join(" ").trim() || null,
          "data-sticky": isSticky ? String(k + 1) : null,
          title: typeof v === "number" ? String(v) : null,
          text: fmtCell(v),
        }),
      );
    });
    tr.addEventListener("click", () => pickRow(r));
    tr.addEventListener("keydown", (ev) => onRowKey(ev, r));
    tbody.append(tr);
  });
  table.append(tbody);
  if (!rows.length) tbody.append(el("tr", {}, el("td", { colspan: String(idx.length + 1), class: "muted", text: "The table is empty." })));
  layoutSticky();
  const first = total ? offset + 1 : 0;
  const last = offset + rows.length;
  const hidden = columns.length - idx.length;
  $("hide-dense-label").hidden = !columns.some((c) => DENSE_RE.test(c));
  const hasPredictions = columns.some((c) => PRED_RE.test(c));
  $("table-hint").textContent = state.table.saliency
    ? "Pick a row (click, or focus it and press Enter) to see every saliency map of its image."
    : `Pick a row (click, or focus it and press Enter) to see its image${hasPredictions ? " and predictions" : ""}.`;
  $("table-summary").textContent = `${total} row${total === 1 ? "" : "s"} · ${columns.length} columns${hidden ? ` (${hidden} dense hidden)` : ""}`;
  $("page-info").textContent = total ? `Rows ${first}–${last} of ${total}` : "";
  $("page-prev").disabled = offset <= 0;
  $("page-next").disabled = offset + rows.length >= total;
}

export function layoutSticky() {
  const table = $("result-table");
  const head = table.querySelectorAll("thead th.sticky");
  const lefts = [];
  let left = 0;
  head.forEach((th) => {
    lefts.push(left);
    left += th.getBoundingClientRect().width;
  });
  for (const cell of table.querySelectorAll(".sticky")) {
    const k = Number(cell.dataset.sticky);
    cell.style.left = `${lefts[k] || 0}px`;
    cell.classList.toggle("sticky-last", k === head.length - 1);
  }
}

export function rowTitle(row) {
  const { columns } = state.table;
  if (state.table.saliency) {
    const keep = columns.map((c, i) => i).filter((i) => !["path", "prediction"].includes(columns[i].toLowerCase()));
    return keep.map((i) => fmtCell(row[i])).filter(Boolean).join(" / ");
  }
  const idCols = columns.map((c, i) => i).filter((i) => !DENSE_RE.test(columns[i]) && !PRED_RE.test(columns[i]));
  return idCols.slice(0, 4).map((i) => fmtCell(row[i])).join(" / ");
}

function moveFocus(rows, to) {
  for (const tr of rows) tr.tabIndex = -1;
  rows[to].tabIndex = 0;
  rows[to].focus();
}

export function onRowKey(ev, r) {
  const rows = $("result-table").querySelectorAll("tbody tr[data-row]");
  if (ev.key === "Enter" || ev.key === " ") {
    ev.preventDefault();
    pickRow(r);
  } else if (ev.key === "ArrowDown" && r + 1 < rows.length) {
    ev.preventDefault();
    moveFocus(rows, r + 1);
  } else if (ev.key === "ArrowUp" && r > 0) {
    ev.preventDefault();
    moveFocus(rows, r - 1);
  }
}

