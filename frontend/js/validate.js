// Section 3: options from the form, validation by the backend, each problem next to its field.
import { $, el, intOrRaw } from "./dom.js";
import { selectionForOptions } from "./folders.js";
import { masterOn } from "./master.js";
import { FIXED, allOptions, fieldId, readOption } from "./options.js";
import { blockingEntries, renderReadiness } from "./readiness.js";
import { RpcError, rpc } from "./rpc.js";
import { saveSettings } from "./settings.js";
import { readable } from "./status.js";
import { TERMINAL, state } from "./store.js";
import { currentType, typeInfo, typeUses } from "./types.js";

const VALIDATE_DELAY_MS = 250;

/** The options of the chosen type: options a type does not list are left out (the backend's defaults apply). */
export function collectOptions() {
  const t = typeInfo();
  const opts = {
    input: $("input-root").value.trim(),
    depth: intOrRaw($("depth").value),
    select: selectionForOptions(),
    type: currentType(),
    filename: $("filename").value.trim(),
    format: $("format").value,
  };
  if (t && t.uses_weights) opts.weights = $("weights").value || null;
  for (const o of (t && t.options) || []) if (!FIXED.has(o.name)) opts[o.name] = readOption(o);
  if (typeUses("features")) {
    opts.features = [...document.querySelectorAll('input[name="features"]')].filter((i) => i.checked && !i.disabled).map((i) => i.value);
  }
  if (typeUses("preprocess")) opts.preprocess = $("preprocess").value;
  if (typeUses("precision")) opts.precision = $("precision").value;
  if (typeUses("prefix")) opts.prefix = $("prefix").value.trim();
  if (typeUses("device")) opts.device = $("device").value;
  if (typeUses("batch_size")) opts.batch_size = intOrRaw($("batch-size").value);
  if ($("engine").value !== "local") { // the Ray engine (radfeat.pipeline.ray_engine); the CLI's --engine, --ray-address
    opts.engine = $("engine").value;
    if ($("ray-address").value.trim()) opts.ray_address = $("ray-address").value.trim();
  }
  if (typeUses("master_table") && masterOn()) {
    const fromDicom = $("dates-from-dicom").checked; // dates from the headers: no dates CSV
    opts.master_table = {
      dates_csv: fromDicom ? "" : $("dates-csv").value.trim(),
      filename_column: fromDicom ? "" : $("filename-col").value,
      date_column: fromDicom ? "" : $("date-col").value,
      patient_level: intOrRaw($("patient-level").value),
      patient_id_int: $("patient-int").checked,
      dates_from_dicom: fromDicom,
      patient_from_dicom: $("patient-from-dicom").checked,
    };
  }
  // DICOM options: sent only when used (the CLI's --dicom-tags, --views, --dicom-voi-lut)
  const list = (id) => $(id).value.split(",").map((v) => v.trim()).filter(Boolean);
  if (list("dicom-tags").length) opts.dicom_tags = list("dicom-tags");
  if (list("views").length) opts.views = list("views");
  if ($("dicom-voi-lut").checked) opts.dicom_voi_lut = true;
  if (state.overwrite && state.overwrite === opts.filename) opts.overwrite = true; // the user chose to replace it
  return opts;
}

// the fields every type shares: where a problem sends the focus, and the field's name in the list
const FIELDS = {
  type: ["type-cards", "Extraction type"],
  format: ["format", "Output format"],
  master_table: ["master-toggle", "Master table"],
  input: ["input-root", "Root folder"],
  depth: ["depth", "Folder depth"],
  select: ["folders-all", "Folders"],
  weights: ["weights", "Model weights"],
  prefix: ["prefix", "Column prefix"],
  filename: ["filename", "Output file name"],
  workspace: ["", "Workspace"],
  device: ["device", "Device"],
  features: ["features-dense", "Features"],
  preprocess: ["preprocess", "Preprocessing"],
  precision: ["precision", "Precision"],
  batch_size: ["batch-size", "Batch size"],
  engine: ["engine", "Engine"],
  ray_address: ["ray-address", "Ray address"],
  dicom_tags: ["dicom-tags", "DICOM header columns"],
  views: ["views", "DICOM views"],
  dicom_voi_lut: ["dicom-voi-lut", "DICOM VOI LUT"],
  "master_table.dates_csv": ["dates-csv", "Dates CSV"],
  "master_table.filename_column": ["filename-col", "File name column"],
  "master_table.date_column": ["date-col", "Date column"],
  "master_table.patient_level": ["patient-level", "Patient level"],
};

/** [id of the control to focus, name of the field] for a problem's field. */
function fieldOf(name) {
  if (FIELDS[name]) return FIELDS[name];
  const o = allOptions().get(name);
  if (!o) return ["", ""];
  const box = document.querySelector(`[data-option="${name}"]`);
  const control = box && box.querySelector("input:not([disabled]), select");
  return [control ? control.id : fieldId(name), o.label || name];
}

let validateTimer = null;


export function scheduleValidate() {
  clearTimeout(validateTimer);
  $("extract-btn").dataset.pending = "1";
  validateTimer = setTimeout(validateNow, VALIDATE_DELAY_MS);
  saveSettings();
}

export async function validateNow() {
  const seq = ++state.validation.seq;
  const options = collectOptions();
  let res;
  let unreachable = false;
  try {
    res = await rpc("validate_options", { options });
  } catch (err) {
    if (seq !== state.validation.seq) return;
    unreachable = err instanceof RpcError && err.code === null && !err.data;
    res = { valid: false, problems: unreachable ? [] : problemsFromError(err), output_path: "" };
  }
  if (seq !== state.validation.seq) return; // a newer validation is under way
  const v = state.validation;
  v.unreachable = unreachable;
  v.valid = Boolean(res.valid);
  v.problems = res.problems || [];
  v.readiness = Array.isArray(res.readiness) ? res.readiness : [];
  v.ready = typeof res.ready === "boolean" ? res.ready : v.valid;
  v.defaultWeights = res.default_weights || "";
  v.outputPath = res.output_path || "";
  delete $("extract-btn").dataset.pending;
  renderProblems();
}

export function problemsFromError(err) {
  if (err && err.data && Array.isArray(err.data.problems)) return err.data.problems;
  return [{ field: "", message: err instanceof Error ? err.message : readable(err) }];
}

/** A problem of a field the user has not filled in yet is listed, but the field is not marked red. */
function quiet(p) {
  if (p.field === "input") return !$("input-root").value.trim() && !state.touched.has("input");
  return false;
}

export function renderProblems() {
  const problems = state.validation.problems;
  const byField = new Map();
  for (const p of problems) {
    const f = p.field || "";
    if (!byField.has(f)) byField.set(f, []);
    byField.get(f).push(p.message);
  }
  for (const slot of document.querySelectorAll("[data-problem]")) {
    const msgs = (byField.get(slot.dataset.problem) || []).filter((m) => !quiet({ field: slot.dataset.problem, message: m }));
    slot.textContent = msgs.join(" ");
    const field = slot.closest("[data-field]");
    if (field) field.classList.toggle("invalid", msgs.length > 0);
    const target = $(fieldOf(slot.dataset.problem)[0] || "");
    if (target) {
      if (msgs.length) target.setAttribute("aria-invalid", "true");
      else target.removeAttribute("aria-invalid");
    }
  }
  const list = $("problem-list");
  list.replaceChildren();
  for (const p of problems) {
    const [focusId, name] = fieldOf(p.field);
    const redundant = !name || p.message.toLowerCase().startsWith(name.toLowerCase());
    const text = redundant ? p.message : `${name}: ${p.message}`;
    const item = focusId
      ? el("a", {
          href: `#${focusId}`,
          class: "linklike",
          onclick: (ev) => {
            ev.preventDefault();
            focusField(focusId);
          },
          text,
        })
      : el("span", { text });
    list.append(el("li", {}, item));
  }
  renderValidity(problems);
  renderReadiness();
  $("output-path-value").textContent = state.validation.outputPath || "—";
  updateExtractButton();
}

/** One status line: ready, not ready (and why), invalid, or the backend cannot be asked. */
function renderValidity(problems) {
  const v = state.validation;
  const valid = v.valid && problems.length === 0;
  const ready = valid && v.ready && !blockingEntries().length;
  // the same options just failed to run: not "ready" (the result above says why)
  const failedHere = Boolean(state.job && state.job.failedWith && state.job.failedWith === JSON.stringify(collectOptions()));
  $("valid-note").hidden = !ready || failedHere || Boolean(v.unreachable);
  $("invalid-warning").hidden = !v.unreachable && (ready || (valid && !(v.readiness || []).length));
  $("invalid-title").textContent = v.unreachable
    ? "The options cannot be checked: the radfeat backend does not answer"
    : valid
      ? "Not ready to extract yet"
      : "You must select convenient options for feature generation";
  if (v.unreachable) $("problem-list").replaceChildren();
  else if (valid) {
    const list = $("problem-list");
    list.replaceChildren(...(v.readiness || []).map((e) => el("li", { text: e.message })));
  }
}

export function focusField(id) {
  const node = $(id);
  if (!node) return;
  const details = node.closest("details");
  if (details) details.open = true;
  if (node.closest("#master-panel") && !masterOn()) return;
  if (node.id === "type-cards") {
    const radio = node.querySelector("input:checked") || node.querySelector("input");
    if (radio) radio.focus();
    return;
  }
  if (node.closest("[hidden]")) return;
  node.focus();
  node.scrollIntoView({ block: "center", behavior: "smooth" });
}

export function updateExtractButton() {
  const running = state.job && !TERMINAL.has(state.job.state);
  const v = state.validation;
  $("extract-btn").disabled = running || !v.valid || v.problems.length > 0 || v.ready === false || blockingEntries().length > 0;
  $("extract-btn").textContent = running ? "Extracting…" : "Extract data";
}

