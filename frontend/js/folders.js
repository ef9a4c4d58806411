// Section 1: the root folder, the folder depth and the folders found at that depth.
import { $, debounce, el, intOrRaw } from "./dom.js";
import { depthSummary } from "./readiness.js";
import { rpc } from "./rpc.js";
import { state } from "./store.js";
import { scheduleValidate } from "./validate.js";

const FOLDERS_DELAY_MS = 300;

export function selectionForOptions() {
  const key = `${$("input-root").value.trim()}|${intOrRaw($("depth").value)}`;
  if (key !== state.foldersKey) return null; // the list is being refreshed for a new root or depth
  if (!state.folders.length) return null; // nothing listed: the backend uses every folder
  if (state.selected.size === state.folders.length) return null; // all
  return state.folders.filter((f) => state.selected.has(f));
}

export const refreshFolders = debounce(async () => {
  const root = $("input-root").value.trim();
  const depth = intOrRaw($("depth").value);
  const key = `${root}|${depth}`;
  if (!root || !Number.isInteger(depth) || depth < 1) {
    setFolders([], key, root ? "Set a folder depth of at least 1." : "Choose a root folder to list its folders.");
    return;
  }
  $("folders-summary").textContent = "Listing folders…";
  try {
    const res = await rpc("list_folders", { root, depth });
    if (`${$("input-root").value.trim()}|${intOrRaw($("depth").value)}` !== key) return; // stale
    setFolders(res.folders || [], key, null);
    surveyDepths(root, depth, res.images);
  } catch (err) {
    if (`${$("input-root").value.trim()}|${intOrRaw($("depth").value)}` !== key) return;
    setFolders([], key, err.message);
    $("depth-survey").textContent = "";
  }
  updatePatientLevels();
  scheduleValidate();
}, FOLDERS_DELAY_MS);

/** Image counts at each depth below the root, so a wrong depth shows before Extract (older backends: nothing). */
async function surveyDepths(root, depth, imagesHere) {
  const out = $("depth-survey");
  try {
    const res = await rpc("survey_depths", { root, max_depth: Math.max(6, depth) });
    if ($("input-root").value.trim() !== root) return;
    const text = depthSummary(res.depths);
    const here = Number.isInteger(imagesHere) ? imagesHere : ((res.depths || []).find((d) => d.depth === depth) || {}).images;
    const hint = !here && res.suggested_depth && res.suggested_depth !== depth ? ` The images are at depth ${res.suggested_depth}.` : "";
    out.textContent = text ? `${text}${res.truncated ? " (counted in part: a very large folder)" : ""}.${hint}` : "";
  } catch {
    out.textContent = "";
  }
}

export function setFolders(folders, key, message) {
  const sameList = key === state.foldersKey;
  state.folders = folders;
  state.foldersKey = key;
  if (state.allMode || !sameList) {
    state.selected = new Set(folders);
    state.allMode = true;
  } else {
    state.selected = new Set(folders.filter((f) => state.selected.has(f)));
  }
  renderFolders(message);
}

export function renderFolders(message = null) {
  const list = $("folder-list");
  const filter = $("folders-filter").value.trim().toLowerCase();
  list.replaceChildren();
  const shown = filter ? state.folders.filter((f) => f.toLowerCase().includes(filter)) : state.folders;
  for (const f of shown) {
    const id = `folder-${state.folders.indexOf(f)}`;
    const cb = el("input", { type: "checkbox", id, value: f });
    cb.checked = state.selected.has(f);
    cb.addEventListener("change", () => {
      if (cb.checked) state.selected.add(f);
      else state.selected.delete(f);
      state.allMode = state.selected.size === state.folders.length;
      updateFolderSummary();
      scheduleValidate();
    });
    list.append(el("li", {}, el("label", { class: "check", for: id }, cb, el("span", { class: "mono", text: f }))));
  }
  if (filter && !shown.length && state.folders.length) {
    list.append(el("li", { class: "muted empty", text: "No folder matches the filter." }));
  }
  const has = state.folders.length > 0;
  $("folders-all").disabled = !has;
  $("folders-filter").disabled = !has;
  updateFolderSummary(message);
}

export function updateFolderSummary(message = null) {
  const all = $("folders-all");
  const n = state.folders.length;
  const k = state.selected.size;
  all.checked = n > 0 && k === n;
  all.indeterminate = k > 0 && k < n;
  const summary = $("folders-summary");
  summary.classList.toggle("error-text", Boolean(message));
  if (message) summary.textContent = message;
  else if (!n) summary.textContent = "No folders at this depth.";
  else summary.textContent = `${k} of ${n} folder${n === 1 ? "" : "s"} selected`;
}

export function updatePatientLevels() {
  const depth = intOrRaw($("depth").value);
  const select = $("patient-level");
  const prev = select.value || "1";
  const n = Number.isInteger(depth) && depth >= 1 ? Math.min(depth, 10) : 1;
  const example = state.folders[0] ? state.folders[0].split("/") : [];
  select.replaceChildren();
  for (let i = 1; i <= n; i++) {
    const ex = example[i - 1] ? ` — e.g. ${example[i - 1]}` : "";
    select.append(el("option", { value: String(i), text: `Level ${i}${ex}` }));
  }
  select.value = Number(prev) <= n ? prev : "1";
}
