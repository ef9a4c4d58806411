// Section 2: each type's own options, rendered from list_types (kind int | choice | multichoice | text | bool).
// One field per option name: a value survives a switch to another type that uses the same option.
import { $, el, intOrRaw } from "./dom.js";
import { state } from "./store.js";
import { typeInfo, typeUses } from "./types.js";

// options every type may share, laid out by hand (index.html, data-option): shown for the types that use them
export const FIXED = new Set(["prefix", "master_table", "device", "batch_size", "features", "preprocess", "precision"]);
const ADVANCED = new Set(["precision", "device", "batch_size"]);

export const fieldId = (name) => String(name).replace(/[^A-Za-z0-9]+/g, "-");

/** Options whose choices are the chosen weight set's trained labels (a multichoice without fixed choices). */
export const fromLabels = (o) => o.kind === "multichoice" && !(o.choices && o.choices.length);

export function choiceList(o) {
  return (o.choices || []).map((c) => {
    if (Array.isArray(c)) return { value: String(c[0]), label: String(c[1] ?? c[0]) };
    if (c && typeof c === "object") return { value: String(c.value), label: String(c.label ?? c.value) };
    return { value: String(c), label: String(c) };
  });
}

/** Every option any type lists (first description wins; the current type's wins for labels). */
export function allOptions() {
  const seen = new Map();
  for (const t of state.types) for (const o of t.options || []) if (!seen.has(o.name)) seen.set(o.name, o);
  const t = typeInfo();
  for (const o of (t && t.options) || []) seen.set(o.name, o);
  return seen;
}

function labelText(text) {
  const m = /^(.*?)\s*(\([^()]*\))$/.exec(text);
  return m ? [m[1], " ", el("span", { class: "muted", text: m[2] })] : [text];
}

function problemSlot(o) {
  return el("p", { class: "problem", id: `${fieldId(o.name)}-problem`, "data-problem": o.name });
}

function hint(o) {
  return o.help ? el("p", { class: "hint small", id: `${fieldId(o.name)}-hint`, text: o.help }) : null;
}

function described(o) {
  const id = fieldId(o.name);
  return [o.help ? `${id}-hint` : "", `${id}-problem`].filter(Boolean).join(" ");
}

function inputField(o, onInput) {
  const id = fieldId(o.name);
  let control;
  if (o.kind === "choice") {
    control = el("select", { id, "aria-describedby": described(o) });
    for (const c of choiceList(o)) control.append(el("option", { value: c.value, text: c.label }));
    control.value = o.default === null || o.default === undefined ? control.value : String(o.default);
    control.addEventListener("change", onInput);
  } else {
    const int = o.kind === "int";
    control = el("input", {
      id,
      type: int ? "number" : "text",
      min: int && o.min !== null ? o.min : null,
      max: int && o.max !== null ? o.max : null,
      step: int ? "1" : null,
      inputmode: int ? "numeric" : null,
      autocomplete: "off",
      spellcheck: "false",
      "aria-describedby": described(o),
    });
    control.value = o.default === null || o.default === undefined ? "" : String(o.default);
    control.addEventListener("input", onInput);
  }
  return el("div", { class: "field", "data-field": o.name, "data-option": o.name },
    el("label", { for: id, text: o.label || o.name }), control, hint(o), problemSlot(o));
}

function boolField(o, onInput) {
  const id = fieldId(o.name);
  const cb = el("input", { type: "checkbox", id, "aria-describedby": described(o) });
  cb.checked = Boolean(o.default);
  cb.addEventListener("change", onInput);
  return el("div", { class: "field", "data-field": o.name, "data-option": o.name },
    el("label", { class: "check", for: id }, cb, el("span", { text: o.label || o.name })), hint(o), problemSlot(o));
}

function multiField(o, onInput) {
  const id = fieldId(o.name);
  const box = el("fieldset", {
    class: `field${fromLabels(o) || choiceList(o).length > 4 ? " span-2" : ""}`,
    "data-field": o.name,
    "data-option": o.name,
    "aria-describedby": `${id}-summary ${id}-problem`,
  });
  box.append(el("legend", { text: o.label || o.name }));
  if (fromLabels(o)) {
    const all = el("input", { type: "checkbox", id: `${id}-all` });
    all.checked = true;
    all.addEventListener("change", () => {
      state.labelChoice.set(o.name, { all: all.checked, chosen: new Set(all.checked ? labelChoices() : []) });
      renderLabelChoices(o, onInput);
      onInput();
    });
    box.append(
      el("div", { class: "folders-toolbar" },
        el("label", { class: "check", for: `${id}-all` }, all, el("span", { text: "All trained labels" })),
        el("span", { class: "muted small", id: `${id}-summary` })),
      el("ul", { class: "folder-list path-list", id: `${id}-list`, "aria-label": o.label || o.name }),
    );
    state.labelChoice.set(o.name, { all: true, chosen: new Set() });
  } else {
    const defaults = Array.isArray(o.default) ? o.default.map(String) : [];
    for (const c of choiceList(o)) {
      const cid = `${id}-${fieldId(c.value)}`;
      const cb = el("input", { type: "checkbox", id: cid, name: `opt-${o.name}`, value: c.value });
      cb.checked = defaults.includes(c.value);
      cb.addEventListener("change", onInput);
      box.append(el("label", { class: "check", for: cid }, cb, el("span", { id: `${cid}-text` }, ...labelText(c.label))));
    }
    box.append(el("p", { class: "hint small", id: `${id}-summary` }));
  }
  box.append(hint(o) || "", problemSlot(o));
  return box;
}

/** Build the fields of every option of every type (once the types are known). */
export function renderOptionFields(onInput) {
  notify = onInput;
  $("type-options").replaceChildren();
  $("advanced-options").replaceChildren();
  for (const o of allOptions().values()) {
    if (FIXED.has(o.name)) continue;
    const node = o.kind === "multichoice" ? multiField(o, onInput) : o.kind === "bool" ? boolField(o, onInput) : inputField(o, onInput);
    (ADVANCED.has(o.name) ? $("advanced-options") : $("type-options")).append(node);
  }
}

/** Show the options of the current type only. */
export function applyOptionVisibility() {
  for (const node of document.querySelectorAll("[data-option]")) node.hidden = !typeUses(node.dataset.option);
  const adv = $("advanced");
  adv.hidden = ![...adv.querySelectorAll("[data-option]")].some((n) => !n.hidden);
  const t = typeInfo();
  for (const o of (t && t.options) || []) {
    const label = document.querySelector(`[data-option="${o.name}"] > label:not(.check), [data-option="${o.name}"] > legend`);
    if (label && o.label && !FIXED.has(o.name)) label.textContent = o.label;
  }
}

// ── options whose choices are the weight set's trained labels ──
let notify = () => {};
let labelSource = () => [];
export function setLabelSource(fn) {
  labelSource = fn;
}
const labelChoices = () => labelSource();

export function renderLabelChoices(o, onInput = notify) {
  const id = fieldId(o.name);
  const list = $(`${id}-list`);
  if (!list) return;
  const labels = typeUses(o.name) ? labelChoices() : [];
  const sel = state.labelChoice.get(o.name) || { all: true, chosen: new Set() };
  if (sel.all) sel.chosen = new Set(labels);
  state.labelChoice.set(o.name, sel);
  list.replaceChildren();
  labels.forEach((label, i) => {
    const cid = `${id}-${i}`;
    const cb = el("input", { type: "checkbox", id: cid, value: label, name: `opt-${o.name}` });
    cb.checked = sel.chosen.has(label);
    cb.addEventListener("change", () => {
      if (cb.checked) sel.chosen.add(label);
      else sel.chosen.delete(label);
      sel.all = labels.every((l) => sel.chosen.has(l));
      updateLabelSummary(o);
      onInput();
    });
    list.append(el("li", {}, el("label", { class: "check", for: cid }, cb, el("span", { text: label }))));
  });
  updateLabelSummary(o);
}

function chosenLabels(o) {
  const sel = state.labelChoice.get(o.name);
  return labelChoices().filter((l) => sel && sel.chosen.has(l));
}

export function updateLabelSummary(o) {
  const id = fieldId(o.name);
  const n = labelChoices().length;
  const k = chosenLabels(o).length;
  const all = $(`${id}-all`);
  all.checked = n > 0 && k === n;
  all.indeterminate = k > 0 && k < n;
  all.disabled = !n;
  $(`${id}-summary`).textContent = n ? `${k} of ${n} selected` : "Choose a weight set to list its labels.";
}

// ── values ──
export function readOption(o) {
  const id = fieldId(o.name);
  if (fromLabels(o)) {
    const sel = state.labelChoice.get(o.name);
    return !sel || sel.all ? null : chosenLabels(o);
  }
  if (o.kind === "multichoice") {
    return [...document.querySelectorAll(`input[name="opt-${o.name}"]`)].filter((i) => i.checked && !i.disabled).map((i) => i.value);
  }
  const node = $(id);
  if (!node) return o.default ?? null;
  if (o.kind === "bool") return node.checked;
  if (o.kind === "int") return intOrRaw(node.value);
  return o.kind === "text" ? node.value.trim() : node.value;
}

/** Values of every rendered option (for the stored settings). */
export function storedOptionValues() {
  const out = {};
  for (const o of allOptions().values()) {
    if (FIXED.has(o.name)) continue;
    if (fromLabels(o)) {
      const sel = state.labelChoice.get(o.name);
      out[o.name] = !sel || sel.all ? null : [...sel.chosen];
    } else if (o.kind === "multichoice") {
      out[o.name] = [...document.querySelectorAll(`input[name="opt-${o.name}"]`)].filter((i) => i.checked).map((i) => i.value);
    } else {
      const node = $(fieldId(o.name));
      if (node) out[o.name] = o.kind === "bool" ? node.checked : node.value;
    }
  }
  return out;
}

export function restoreOptionValues(values) {
  if (!values || typeof values !== "object") return;
  for (const o of allOptions().values()) {
    if (FIXED.has(o.name) || !(o.name in values)) continue;
    const v = values[o.name];
    if (fromLabels(o)) {
      if (Array.isArray(v)) state.labelChoice.set(o.name, { all: false, chosen: new Set(v) });
    } else if (o.kind === "multichoice" && Array.isArray(v)) {
      for (const i of document.querySelectorAll(`input[name="opt-${o.name}"]`)) i.checked = v.includes(i.value);
    } else {
      const node = $(fieldId(o.name));
      if (!node) continue;
      if (o.kind === "bool") node.checked = Boolean(v);
      else if (typeof v === "string" || typeof v === "number") node.value = String(v);
    }
  }
}
