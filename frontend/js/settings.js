// The form's settings, kept in local storage so a reload (or a new tab) finds them again.
import { $, debounce } from "./dom.js";
import { rpc } from "./rpc.js";
import { restoreOptionValues, storedOptionValues } from "./options.js";
import { state } from "./store.js";
import { FORMATS, currentType, selectType, suggestedFilename } from "./types.js";

const STORE_PREFIX = "radfeat.page.options.v2";
const PERSISTED = ["input-root", "depth", "prefix", "filename", "format", "device", "batch-size", "preprocess", "precision",
  "dicom-tags", "views", "engine", "ray-address"];
let storeKey = STORE_PREFIX;

/** Settings belong to a workspace: the backend keeps them per workspace (the page's own storage is per port, and
 * every launch of radfeat gets a new port); local storage is the fallback of an older backend. */
export function useWorkspaceKey(workspace) {
  storeKey = workspace ? `${STORE_PREFIX}:${workspace}` : STORE_PREFIX;
}

export function saveSettings() {
  try {
    const data = {};
    for (const id of PERSISTED) data[id] = $(id).value;
    data.type = currentType();
    data.weightsChoice = state.weightsChoice;
    data.options = storedOptionValues();
    data.dense = $("features-dense").checked;
    const pred = $("features-predictions");
    data.pred = pred.dataset.wanted ? pred.dataset.wanted === "1" : pred.checked;
    data.filenameEdited = state.filenameEdited;
    data.savedAt = Date.now();
    localStorage.setItem(storeKey, JSON.stringify(data));
    pending = data;
    saveToBackend();
  } catch {
    /* storage may be unavailable; settings are a convenience */
  }
}

let backendStore = false;
let pending = null;

function flush(keepalive = false) {
  if (!backendStore || !pending) return;
  const settings = pending;
  pending = null;
  rpc("save_page_settings", { settings }, { keepalive }).catch(() => {});
}

const saveToBackend = debounce(() => flush(), 400);
window.addEventListener("pagehide", () => flush(true)); // a reload or a closed tab keeps the last change

export async function loadSettings() {
  let data = null;
  try {
    const res = await rpc("page_settings");
    backendStore = true;
    data = res.settings || null;
  } catch {
    /* an older backend: this browser's storage only */
  }
  try {
    const local = JSON.parse(localStorage.getItem(storeKey) || "null");
    if (local && (!data || (local.savedAt || 0) > (data.savedAt || 0))) data = local; // the newer of the two
    if (!data) return null;
    for (const id of PERSISTED) if (typeof data[id] === "string") $(id).value = data[id];
    if (!FORMATS.includes($("format").value)) $("format").value = "csv";
    if (typeof data.type === "string") selectType(data.type);
    if (data.weightsChoice && typeof data.weightsChoice === "object") Object.assign(state.weightsChoice, data.weightsChoice);
    restoreOptionValues(data.options);
    if (typeof data.dense === "boolean") $("features-dense").checked = data.dense;
    if (typeof data.pred === "boolean") $("features-predictions").checked = data.pred;
    state.filenameEdited =
      typeof data.filenameEdited === "boolean" ? data.filenameEdited : $("filename").value.trim() !== suggestedFilename();
    return data;
  } catch {
    return null;
  }
}
