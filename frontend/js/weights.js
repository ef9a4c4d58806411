// Section 2: the weight sets the current type runs, what they predict, and the features they give.
import { $, el, fmtSize } from "./dom.js";
import { allOptions, fromLabels, renderLabelChoices, setLabelSource } from "./options.js";
import { rpc } from "./rpc.js";
import { state } from "./store.js";
import { currentType, typeInfo } from "./types.js";

const PREFIX_RE = /^[A-Za-z0-9_]+$/; // MEDomics rule, as the backend checks it

function kindsKey(t = typeInfo()) {
  return t ? (t.weights_kinds || []).join(",") : "";
}

export function weightsForType(t = typeInfo()) {
  if (!t || !t.uses_weights) return [];
  const kinds = t.weights_kinds || [];
  return state.weights.filter((w) => kinds.includes(w.type));
}

/** The type's default set; when it is not on this machine, the backend's usable default of the same kind. */
function typeDefaultWeights(t = typeInfo()) {
  if (!t || !t.uses_weights) return "";
  const usable = state.weights.find((w) => w.name === state.defaultWeights && (t.weights_kinds || []).includes(w.type));
  const own = t.default_weights ? state.weights.find((w) => w.name === t.default_weights) : null;
  if (own && (isHere(own) || !usable)) return own.name;
  return usable ? usable.name : t.default_weights || "";
}

/** The weight file is on this machine (list_weights' `available`; older backends: downloaded or the user's). */
export function isHere(w) {
  return typeof w.available === "boolean" ? w.available : Boolean(w.downloaded || w.source === "user");
}

export function currentWeights(name = $("weights").value) {
  return state.weights.find((w) => w.name === name) || null;
}

export function labelsOf(name) {
  const w = currentWeights(name);
  return w && w.labels ? w.labels : [];
}

export function trainedLabels(w = currentWeights()) {
  if (!w) return [];
  return w.trained_labels || (w.labels || []).filter(Boolean);
}

setLabelSource(() => trainedLabels());

export async function loadWeights(onShown) {
  const select = $("weights");
  try {
    const res = await rpc("list_weights");
    state.weights = res.weights || [];
    state.defaultWeights = res.default || (state.weights[0] && state.weights[0].name) || "";
    const names = [];
    for (const w of state.weights) {
      (w.labels || []).forEach((l, i) => {
        if (l && !names[i]) names[i] = l;
      });
    }
    state.pathologyNames = names;
    select.disabled = false;
    populateWeights(onShown);
  } catch (err) {
    select.replaceChildren(el("option", { value: "", text: "Weights unavailable" }));
    $("weights-info").textContent = err.message;
  }
}

function optionText(w, def) {
  const flags = [];
  const trained = trainedLabels(w).length;
  if (w.needs_export !== false) flags.push(trained ? `${trained} label${trained === 1 ? "" : "s"}` : "no predictions");
  if (w.source === "user") flags.push("your weights");
  else flags.push(isHere(w) ? "on this machine" : "not on this machine");
  if (w.exported && w.needs_export !== false) flags.push("exported");
  return `${w.name}${w.name === def ? " (default)" : ""} · ${flags.join(" · ")}`;
}

/** Fill the weights list with the sets the current type runs, keeping each kind's last choice. */
export function populateWeights(onShown) {
  const select = $("weights");
  if (!state.weights.length && select.disabled) return; // still loading
  const t = typeInfo();
  const list = weightsForType(t);
  const def = typeDefaultWeights(t);
  select.replaceChildren();
  if (!list.length) select.append(el("option", { value: "", text: `Nothing registered yet for “${t ? t.label : ""}”` }));
  for (const w of list) select.append(el("option", { value: w.name, text: optionText(w, def) }));
  if (t && t.uses_weights) {
    const names = list.map((w) => w.name);
    const want = state.weightsChoice[kindsKey(t)];
    select.value = names.includes(want) ? want : names.includes(def) ? def : names[0] || "";
    if (select.value) state.weightsChoice[kindsKey(t)] = select.value;
  }
  onWeightsShown();
  if (onShown) onShown();
}

export function rememberWeightsChoice() {
  if ($("weights").value) state.weightsChoice[kindsKey()] = $("weights").value;
}

/** Everything that depends on the chosen weight set. */
export function onWeightsShown() {
  renderWeightsInfo();
  updateFeatureLabels();
  for (const o of allOptions().values()) if (fromLabels(o)) renderLabelChoices(o);
}

/** Feature choices named and counted for the chosen weights; a model without labels gives no predictions. */
export function updateFeatureLabels() {
  const t = typeInfo();
  const w = t && t.uses_weights ? currentWeights() : null;
  const id = "features";
  const dense = $(`${id}-dense-text`);
  if (dense && w && w.feature_label) {
    dense.replaceChildren(w.feature_label, " ", el("span", { class: "muted", text: w.feature_count ? `(${w.feature_count} per image)` : "" }));
  }
  const pred = $(`${id}-predictions`);
  if (pred && w) {
    const noPred = !(w.labels || []).length;
    if (noPred && !pred.disabled) {
      pred.dataset.wanted = pred.checked ? "1" : "0";
      pred.checked = false;
      pred.disabled = true;
    } else if (!noPred && pred.disabled) {
      pred.checked = pred.dataset.wanted !== "0";
      delete pred.dataset.wanted;
      pred.disabled = false;
    }
    const heads = (w.labels || []).length;
    const trained = trainedLabels(w).length;
    const note = noPred ? "(none: this model gives no predictions)" : trained < heads ? `(${heads} heads, ${trained} trained)` : `(${heads} pathologies)`;
    $(`${id}-predictions-text`).replaceChildren("Predictions ", el("span", { class: "muted", text: note }));
  }
  updatePrefixExample(w);
}

/** `<prefix>_<first column family>`: shown only for a valid prefix (an invalid one is not echoed). */
export function updatePrefixExample(w = currentWeights()) {
  const t = typeInfo();
  const prefix = $("prefix").value.trim();
  let family = "";
  if (t && t.uses_weights && w && w.feature_family) family = `${w.feature_family}_0`;
  else if (t) {
    // from the type's column text: "<prefix>_fractal_<feature>: lac_r3, …" → fractal_lac_r3
    const m = /<prefix>_([A-Za-z0-9_]*)(?:<[^>]+>)?(?::\s*([A-Za-z0-9_]+))?/.exec(t.columns || "");
    family = m ? `${m[1]}${m[2] || ""}`.replace(/_$/, "") : "";
  }
  const ok = PREFIX_RE.test(prefix) && family;
  $("prefix-example-line").hidden = !ok;
  if (ok) $("prefix-example").textContent = `${prefix}_${family}`;
}

function badge(cls, text) {
  return el("span", { class: `badge ${cls}`, text });
}

function renderWeightsInfo() {
  const box = $("weights-info");
  const t = typeInfo();
  const w = currentWeights();
  box.replaceChildren();
  if (!w) {
    if (t && t.uses_weights && state.weights.length) {
      box.append(el("p", { class: "small muted" }, "Register your own model on the command line with ",
        el("code", { text: "radfeat models add NAME checkpoint.pt" }), " or ",
        el("code", { text: "radfeat models add-onnx NAME model.onnx" }), ", then reload the list (↻)."));
    }
    return;
  }
  if (w.description) box.append(el("p", { class: "small", text: w.description }));
  const badges = el("p", { class: "badges" });
  if (w.source === "user") badges.append(badge("user", "✓ Your own file, registered on this machine"));
  else badges.append(isHere(w) ? badge("ok", "✓ On this machine") : badge("todo", `Not on this machine${w.size ? ` (${fmtSize(w.size)})` : ""}`));
  if (w.needs_export !== false) badges.append(w.exported ? badge("ok", "✓ Exported to ONNX") : badge("todo", "Exported to ONNX on first use"));
  else if (w.input_size) badges.append(badge("", `Input ${w.input_size} × ${w.input_size}`));
  box.append(badges);
  renderLabelChips(box, w, t);
}

function renderLabelChips(box, w, t) {
  if (w.needs_export === false || (t && (t.options || []).some(fromLabels))) return; // the label picker lists them
  const labels = w.labels || [];
  const trained = labels.filter(Boolean).length;
  if (!labels.length) {
    box.append(el("p", { class: "small muted", text: `${w.name} gives no predictions; its features are its ${String(w.feature_label || "outputs").toLowerCase()}.` }));
    return;
  }
  box.append(el("p", {
    class: "small muted",
    text: trained < labels.length
      ? `Predicts ${trained} of the ${labels.length} pathologies; the other heads are untrained and their outputs carry no meaning.`
      : `Predicts all ${labels.length} pathologies.`,
  }));
  const chips = el("ul", { class: "chips", "aria-label": `Labels predicted by ${w.name}` });
  labels.forEach((l, i) => {
    const name = l || state.pathologyNames[i] || `head ${i}`;
    chips.append(el("li", { class: `chip ${l ? "trained" : "untrained"}`, title: l ? `Head ${i}: ${l}` : `Head ${i}: untrained` },
      l ? name : el("s", { text: name }), l ? null : el("span", { class: "sr-only", text: " (untrained)" })));
  });
  box.append(chips);
}
