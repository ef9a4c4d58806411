// radfeat · Image Extraction page: the entry module.  Plain ES modules under js/, no framework, no build step.
// Talks JSON-RPC 2.0 to the local backend (js/rpc.js); inside `radfeat gui` the pywebview js_api adds native
// dialogs (js/native.js).  The extraction types and their options come from the backend (list_types).
import { $, debounce } from "./js/dom.js";
import { refreshFolders, renderFolders, updatePatientLevels } from "./js/folders.js";
import { cancelJob, followJob, pollJob, resumeRunningJob, startExtraction } from "./js/job.js";
import { wireFit } from "./js/fit.js";
import { finishJob } from "./js/jobresult.js";
import { updateMapsSummary } from "./js/maps.js";
import { setDatasetHooks, wireDataset } from "./js/dataset.js";
import { pickRow } from "./js/detail.js";
import { browse, enableNative } from "./js/native.js";
import { applyOptionVisibility, renderOptionFields } from "./js/options.js";
import { inspectDates, masterOn } from "./js/master.js";
import { setReadinessHooks } from "./js/readiness.js";
import { offerPartialRuns, setReconnectHooks } from "./js/reconnect.js";
import { readToken, rpc } from "./js/rpc.js";
import { loadSettings, useWorkspaceKey } from "./js/settings.js";
import { hideError, setConnection, showError } from "./js/status.js";
import { state } from "./js/store.js";
import { PAGE_SIZE, layoutSticky, loadTable, refreshFiles, renderTable } from "./js/table.js";
import { followFilename, loadTypes, markCheckedCard, suggestedFilename, typeInfo, updateFilenameHint } from "./js/types.js";
import { loadWeights, onWeightsShown, populateWeights, rememberWeightsChoice, updatePrefixExample } from "./js/weights.js";
import { renderProblems, scheduleValidate } from "./js/validate.js";

function onOptionInput() {
  updateMapsSummary();
  scheduleValidate();
}

/** Show the controls of the chosen type only, with its weight sets and its file name. */
function applyType() {
  markCheckedCard();
  applyOptionVisibility();
  const t = typeInfo();
  $("weights-field").hidden = !(t && t.uses_weights);
  // types that write map images say where (the folder is named after the table)
  $("saliency-folder-note").hidden = !(t && (t.options || []).some((o) => o.name === "saliency_methods"));
  populateWeights();
  followFilename();
  updateMapsSummary();
}

function wireData() {
  $("input-root").addEventListener("input", () => {
    state.touched.add("input");
    refreshFolders();
    scheduleValidate();
  });
  $("depth").addEventListener("input", () => {
    updatePatientLevels();
    refreshFolders();
    scheduleValidate();
  });
  $("input-browse").addEventListener("click", () => browse("folder", "input-root"));
  $("folders-all").addEventListener("change", (ev) => {
    state.selected = ev.target.checked ? new Set(state.folders) : new Set();
    state.allMode = ev.target.checked;
    renderFolders();
    scheduleValidate();
  });
  $("folders-filter").addEventListener("input", () => renderFolders());
}

function wireType() {
  $("weights").addEventListener("change", () => {
    rememberWeightsChoice();
    onWeightsShown();
    onOptionInput();
  });
  $("weights-refresh").addEventListener("click", async () => {
    await loadWeights();
    scheduleValidate();
  });
  for (const id of ["patient-level", "patient-int", "filename-col", "date-col", "features-dense", "features-predictions",
    "preprocess", "precision", "dicom-voi-lut", "dates-from-dicom", "patient-from-dicom"]) $(id).addEventListener("change", scheduleValidate);
  for (const id of ["dicom-tags", "views"]) $(id).addEventListener("input", scheduleValidate);
  $("dates-from-dicom").addEventListener("change", (ev) => {
    // dates from the headers: the dates CSV and its columns are not used
    for (const id of ["dates-csv", "filename-col", "date-col"]) $(id).closest(".field").hidden = ev.target.checked;
  });
  $("prefix").addEventListener("input", () => {
    updatePrefixExample();
    scheduleValidate();
  });
  $("master-toggle").addEventListener("change", () => {
    $("master-panel").hidden = !masterOn();
    if (masterOn()) updatePatientLevels();
    scheduleValidate();
  });
  $("dates-csv").addEventListener("input", () => {
    inspectDates();
    scheduleValidate();
  });
  $("dates-browse").addEventListener("click", () => browse("csv", "dates-csv"));
}

function wireExtract() {
  $("filename").addEventListener("input", () => {
    state.filenameEdited = $("filename").value.trim() !== suggestedFilename();
    updateFilenameHint();
    scheduleValidate();
  });
  $("format").addEventListener("change", () => {
    followFilename(true);
    scheduleValidate();
  });
  $("batch-size").addEventListener("input", scheduleValidate);
  $("engine").addEventListener("change", scheduleValidate);
  $("ray-address").addEventListener("input", scheduleValidate);
  $("device").addEventListener("change", scheduleValidate);
  $("extract-btn").addEventListener("click", startExtraction);
  $("cancel-btn").addEventListener("click", cancelJob);
}

function wireTable() {
  $("table-toggle").addEventListener("change", () => {
    const on = $("table-toggle").checked;
    $("table-panel").hidden = !on;
    if (on) {
      const path = $("result-file").value;
      if (path) loadTable(path, 0);
      else $("table-summary").textContent = "No extracted table yet: run an extraction first.";
    }
  });
  $("result-file").addEventListener("change", () => {
    if ($("table-toggle").checked && $("result-file").value) loadTable($("result-file").value, 0);
  });
  $("files-refresh").addEventListener("click", () => refreshFiles());
  $("hide-dense").addEventListener("change", () => {
    if (state.table.columns.length) renderTable();
  });
  $("page-prev").addEventListener("click", () => loadTable(state.table.path, Math.max(0, state.table.offset - PAGE_SIZE)));
  $("page-next").addEventListener("click", () => loadTable(state.table.path, state.table.offset + PAGE_SIZE));
  // the pinned columns depend on the width (fewer in a narrow window): lay the table out again
  window.addEventListener("resize", debounce(() => (state.table.columns.length ? renderTable() : layoutSticky()), 150));
}

async function connect() {
  if (!readToken()) {
    setConnection("down", "No access token");
    showError("This page was not opened by radfeat", "Open it from “radfeat gui”, or from the address printed by “radfeat serve”.");
  }
  try {
    const v = await rpc("version");
    setConnection("up", `Connected · radfeat ${v.radfeat}`);
    useWorkspaceKey(v.workspace || "");
    state.backend.instance = v.instance || "";
    state.backend.workspace = v.workspace || "";
    const providers = Array.isArray(v.providers) ? v.providers.join(", ") : "";
    $("version").textContent = `radfeat ${v.radfeat} · onnxruntime ${v.onnxruntime}${providers ? ` (${providers})` : ""}`;
  } catch (err) {
    setConnection("down", "Backend unreachable");
    showError("Cannot talk to the radfeat backend", err);
  }
}

/** Show row `i` (absolute) of the current table: its page, the row picked and focused, its detail. */
async function goToRow(i) {
  const page = Math.floor(i / PAGE_SIZE) * PAGE_SIZE;
  if (state.table.offset !== page || !state.table.rows.length) await loadTable(state.table.path, page);
  const tr = $("result-table").querySelector(`tbody tr[data-row="${i - page}"]`);
  if (tr) tr.focus({ preventScroll: true });
  await pickRow(i - page);
}

function setValue(id, value, event = "input") {
  $(id).value = String(value);
  $(id).dispatchEvent(new Event(event, { bubbles: true }));
}

async function init() {
  $("banner-close").addEventListener("click", hideError);
  setReadinessHooks({
    revalidate: scheduleValidate,
    reloadWeights: () => loadWeights(),
    setDepth: (d) => setValue("depth", d),
    setFilename: (name) => setValue("filename", name),
    useWeights: (name) => setValue("weights", name, "change"),
  });
  setReconnectHooks({ follow: followJob, finish: finishJob, poll: pollJob, revalidate: scheduleValidate, showValidity: renderProblems });
  setDatasetHooks({ goToRow });
  wireDataset();
  wireData();
  wireType();
  wireExtract();
  wireTable();
  wireFit();
  window.addEventListener("pywebviewready", enableNative);
  enableNative();
  await connect();
  await loadTypes(() => {
    applyType();
    scheduleValidate();
  });
  renderOptionFields(onOptionInput);
  await loadSettings();
  updatePatientLevels();
  applyType();
  await Promise.all([loadWeights(() => updateMapsSummary()), refreshFiles(), resumeRunningJob()]);
  if (!state.job) offerPartialRuns(); // runs interrupted earlier (cancel, crash, a closed window)
  if ($("input-root").value.trim()) refreshFolders();
  scheduleValidate();
}

document.addEventListener("DOMContentLoaded", init);
