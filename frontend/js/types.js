// Section 2: the extraction types, learned from the backend (list_types), as radio cards.
import { $, el } from "./dom.js";
import { rpc } from "./rpc.js";
import { state } from "./store.js";
import { showError } from "./status.js";

export const FORMATS = ["csv", "parquet", "arff"];

export function typeInfo(name = currentType()) {
  return state.types.find((t) => t.name === name) || null;
}

export function currentType() {
  const checked = document.querySelector('input[name="etype"]:checked');
  const names = state.types.map((t) => t.name);
  if (checked && names.includes(checked.value)) return checked.value;
  return names.includes(state.defaultType) ? state.defaultType : names[0] || "";
}

export function selectType(name) {
  const radio = $(`type-${name}`);
  if (radio) radio.checked = true;
}

// list_types says which shared options a type honours (features, int8, preprocess, master_table)
const FLAGS = { features: "features", precision: "int8", preprocess: "preprocess", master_table: "master_table" };

/** Does the current type use option `name`?  Its own options, the shared ones its flags name; the column prefix
 * when its columns carry one; device and batch size when it runs a model.  Otherwise: options no type lists
 * are used by every type. */
export function typeUses(name) {
  const t = typeInfo();
  if (!t) return true;
  if ((t.options || []).some((o) => o.name === name)) return true;
  const flag = FLAGS[name];
  if (flag && typeof t[flag] === "boolean") return t[flag];
  if (name === "prefix" && typeof t.columns === "string") return t.columns.includes("<prefix>");
  if ((name === "device" || name === "batch_size") && typeof t.uses_weights === "boolean") return t.uses_weights;
  return !state.types.some((u) => (u.options || []).some((o) => o.name === name));
}

export async function loadTypes(onChange) {
  try {
    const res = await rpc("list_types");
    state.types = res.types || [];
    state.defaultType = res.default || (state.types[0] && state.types[0].name) || "";
  } catch (err) {
    state.types = [];
    showError("The extraction types could not be loaded", err);
  }
  renderTypeCards(onChange);
}

function shortLine(t) {
  const d = String(t.description || "");
  const cut = d.search(/[:;.]/);
  return cut > 0 ? d.slice(0, cut) : d;
}

function renderTypeCards(onChange) {
  const box = $("type-cards");
  box.replaceChildren();
  for (const t of state.types) {
    const radio = el("input", { type: "radio", name: "etype", id: `type-${t.name}`, value: t.name });
    radio.checked = t.name === state.defaultType;
    radio.addEventListener("change", onChange);
    box.append(
      el(
        "label",
        { class: "seg", for: `type-${t.name}` },
        radio,
        el("span", {}, el("strong", { text: t.label || t.name }), el("span", { class: "muted", text: shortLine(t) })),
      ),
    );
  }
}

export function markCheckedCard() {
  for (const seg of document.querySelectorAll(".type-choice .seg")) {
    seg.classList.toggle("checked", seg.querySelector("input").checked);
  }
  const t = typeInfo();
  $("type-note").textContent = t ? `${t.description || ""}${t.columns ? ` Columns: ${t.columns}.` : ""}` : "";
}

// ── the output file name follows the type and the format until the user types their own ──
function stemOf(name) {
  return String(name || "").replace(/\.[A-Za-z0-9]+$/, "");
}

export function suggestedFilename(t = typeInfo(), fmt = $("format").value) {
  const stem = stemOf(t && t.default_filename) || "image_extracted_features";
  return `${stem}.${FORMATS.includes(fmt) ? fmt : "csv"}`;
}

export function followFilename(formatChanged = false) {
  const input = $("filename");
  const fmt = $("format").value;
  const name = input.value.trim();
  if (!state.filenameEdited) {
    input.value = suggestedFilename();
  } else if (formatChanged && /\.(csv|parquet|arff)$/i.test(name)) {
    input.value = name.replace(/\.(csv|parquet|arff)$/i, `.${fmt}`);
  }
  state.filenameEdited = input.value.trim() !== suggestedFilename();
  updateFilenameHint();
}

export function updateFilenameHint() {
  $("filename-hint").textContent = state.filenameEdited
    ? "Your own name; it keeps its stem when the format changes."
    : "Follows the type and format until you edit it.";
  const stem = stemOf($("filename").value.trim()) || stemOf(suggestedFilename());
  $("saliency-folder").textContent = `DATA/saliency/${stem}`;
}
