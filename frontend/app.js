// radfeat · Image Extraction page.
// Plain ES module, no framework, no build step.  Talks JSON-RPC 2.0 to the local backend
// (POST /rpc with the X-Radfeat-Token header; see docs/CONTRACT.md).  Inside `radfeat gui`
// the pywebview js_api (window.pywebview.api) adds native folder/file dialogs.

const $ = (id) => document.getElementById(id);
const SVG_NS = "http://www.w3.org/2000/svg";
const VALIDATE_DELAY_MS = 250;
const FOLDERS_DELAY_MS = 300;
const POLL_MS = 500;
const PAGE_SIZE = 50;
const STORE_KEY = "radfeat.page.options.v1";
const TOKEN_PLACEHOLDER = "{{RADFEAT_TOKEN}}";
const DENSE_RE = /(densefeatures?|resnetfeatures|latent)_\d+$/i; // per-image feature vectors
const NAN_RE = /^[-+]?(nan|inf|infinity)$/i;
// a feature column: <prefix>_<family>_<i> (dense, ResNet, latent, ONNX outputs) or <prefix>_fractal_<feature>
const FEATURE_RE = /^[A-Za-z0-9]+_(fractal_[A-Za-z0-9_]+|[A-Za-z0-9_]+_\d+)$/;
const PRED_RE = /predictions?_(\d+)$/i;
const LEVEL_RE = /^level_(\d+)$/i;
const TERMINAL = new Set(["done", "failed", "cancelled"]);
const BUSY = -32003;

// Extraction types (docs/ui-types.md): which weight sets each one runs, and its default output name.
const TYPES = ["densenet", "encoder", "onnx", "fractal", "saliency"];
const WEIGHTS_FAMILY = { densenet: "densenet", encoder: "encoder", onnx: "onnx", saliency: "densenet", fractal: null };
const DEFAULT_ENCODER = "resnet50-res512-all";
const FORMATS = ["csv", "parquet", "arff"];
const FILE_STEMS = {
  densenet: "image_extracted_features",
  encoder: "image_extracted_features",
  onnx: "image_extracted_features",
  fractal: "image_fractal_features",
  saliency: "image_saliency_maps",
};
const TYPE_NOTES = {
  densenet: "Runs a TorchXRayVision DenseNet-121 weight set: 1024 dense features and its pathology predictions per image.",
  encoder: "Runs another TorchXRayVision encoder: the ResNet-50 at 512 × 512 (2048 features and predictions) or the ResNet autoencoder (its latent code).",
  onnx: "Runs an image model you registered with “radfeat models add-onnx”; the columns are the outputs chosen when it was registered.",
  fractal: "Gliding-box lacunarity, fractal dimension and percolation on the original image; uses no model weights.",
  saliency: "Class activation maps of a DenseNet weight set, saved as PNG files; the table lists them with each pathology’s prediction.",
};
const METHODS = ["gradcam", "gradcampp", "eigencam"];
const CLASS_METHODS = new Set(["gradcam", "gradcampp"]);
const METHOD_NAMES = { gradcam: "Grad-CAM", gradcampp: "Grad-CAM++", eigencam: "Eigen-CAM" };
const STYLES = ["gray", "colormap", "overlay", "multiply"];
const STYLE_NAMES = { gray: "Grayscale", colormap: "Colormap", overlay: "Overlay", multiply: "Multiply" };
const SALIENCY_COLUMNS = ["method", "style", "path"];
const MAP_SIZE = 256; // thumbnail size requested for each map (shown at about half, sharp on HiDPI screens)
const MAP_WINDOW = 1000; // read_table's largest page
const THUMB_CONCURRENCY = 4;

// ───────────────────────────── state ─────────────────────────────
const state = {
  token: "",
  native: false,
  weights: [], // list_weights().weights
  defaultWeights: "",
  pathologyNames: [], // name of each of the 18 heads, from any set that trains it
  weightsChoice: {}, // weight family (densenet | encoder | onnx) -> chosen name
  pathologies: { all: true, chosen: new Set() }, // saliency: all trained labels, or the ones ticked
  filenameEdited: false, // the output name no longer follows type + format
  folders: [], // folders at the current depth (relative posix paths)
  foldersKey: "", // root|depth the list belongs to
  selected: new Set(),
  allMode: true, // "select all" stays on when the list refreshes
  datesColumns: [],
  validation: { seq: 0, valid: false, problems: [], outputPath: "" },
  job: null, // {id, options, state}
  lastJob: null, // options + output of the last finished job: the context of its table
  table: { path: "", offset: 0, total: 0, columns: [], rows: [], picked: -1, seq: 0, saliency: false, maps: new Map() },
};

// ───────────────────────────── RPC ─────────────────────────────
class RpcError extends Error {
  constructor(message, code = null, data = null) {
    super(message);
    this.code = code;
    this.data = data;
  }
}

let rpcId = 0;

/** Turn whatever the backend said into one readable sentence (never a stack trace). */
export function readable(message) {
  let text = String(message ?? "").trim();
  if (!text) return "The backend reported an error without details.";
  if (/Traceback \(most recent call last\)/.test(text) || /\n\s+File "/.test(text)) {
    const lines = text.split(/\r?\n/).map((l) => l.trim()).filter(Boolean);
    const useful = lines.filter((l) => !/^(Traceback|File "|\^+$|~+$)/.test(l) && !/^\s*at /.test(l));
    text = useful.length ? useful[useful.length - 1] : "The backend failed unexpectedly.";
  }
  text = text.replace(/^[A-Za-z_.]*(Error|Exception):\s*/, "");
  if (text.length > 400) text = `${text.slice(0, 397)}…`;
  return text;
}

async function rpc(method, params = {}) {
  let resp;
  try {
    resp = await fetch("/rpc", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Radfeat-Token": state.token },
      body: JSON.stringify({ jsonrpc: "2.0", id: ++rpcId, method, params }),
    });
  } catch {
    setConnection("down", "Backend unreachable");
    throw new RpcError("Cannot reach the radfeat backend. Is it still running?");
  }
  if (resp.status === 401 || resp.status === 403) {
    throw new RpcError(
      "The backend refused this page (access token mismatch). Reopen it from “radfeat gui” or from the address printed by “radfeat serve”.",
    );
  }
  let body;
  try {
    body = await resp.json();
  } catch {
    throw new RpcError(`The backend answered ${method} with HTTP ${resp.status} and no readable data.`);
  }
  if (body && body.error) {
    const err = body.error;
    throw new RpcError(readable(err.message), err.code ?? null, err.data ?? null);
  }
  setConnection("up");
  return body ? body.result : null;
}

// ───────────────────────────── small helpers ─────────────────────────────
function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

function intOrRaw(value) {
  const s = String(value).trim();
  return /^-?\d+$/.test(s) ? Number.parseInt(s, 10) : s;
}

function fmtDuration(s) {
  if (s === null || s === undefined || !Number.isFinite(Number(s))) return "—";
  s = Math.max(0, Math.round(Number(s)));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

function fmtSeconds(s) {
  const v = Number(s);
  return v < 60 ? `${v.toFixed(1)} s` : fmtDuration(v);
}

function fmtSize(bytes) {
  if (!bytes && bytes !== 0) return "";
  const units = ["B", "KB", "MB", "GB"];
  let v = Number(bytes);
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function fmtCell(v) {
  if (v === null || v === undefined || v === "") return "";
  if (typeof v === "string" && NAN_RE.test(v.trim())) return "NaN";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    if (!Number.isFinite(v)) return String(v);
    return Math.abs(v) >= 1000 ? v.toFixed(1) : v.toFixed(4);
  }
  return String(v);
}

function joinPath(...parts) {
  const cleaned = parts.filter((p) => p !== null && p !== undefined && String(p) !== "").map(String);
  if (!cleaned.length) return "";
  const [first, ...rest] = cleaned;
  const head = first.replace(/[\\/]+$/, "") || first.slice(0, 1);
  return [head, ...rest.map((p) => p.replace(/^[\\/]+|[\\/]+$/g, ""))].join("/");
}

// ───────────────────────────── banner / connection ─────────────────────────────
function showError(title, err) {
  const msg = err instanceof Error ? err.message : readable(err);
  $("banner-title").textContent = title;
  $("banner-text").textContent = readable(msg);
  $("banner").hidden = false;
}

function hideError() {
  $("banner").hidden = true;
}

function setConnection(mode, text) {
  const conn = $("conn");
  if (mode === "up" && !text && conn.dataset.state === "up") return;
  conn.dataset.state = mode;
  if (text) $("conn-text").textContent = text;
  else if (mode === "up") $("conn-text").textContent = "Connected";
}

// ───────────────────────────── persistence ─────────────────────────────
const PERSISTED = ["input-root", "depth", "prefix", "preprocess", "filename", "format", "max-box", "device", "precision",
  "batch-size"];

function saveSettings() {
  try {
    const data = {};
    for (const id of PERSISTED) data[id] = $(id).value;
    data.type = currentType();
    data.weights = state.weightsChoice.densenet || "";
    data.weightsChoice = state.weightsChoice;
    data.dense = $("feat-dense").checked;
    data.pred = $("feat-pred").dataset.wanted ? $("feat-pred").dataset.wanted === "1" : $("feat-pred").checked;
    data.methods = checkedValues("saliency-method");
    data.styles = checkedValues("saliency-style");
    data.pathologies = state.pathologies.all ? null : [...state.pathologies.chosen];
    data.filenameEdited = state.filenameEdited;
    localStorage.setItem(STORE_KEY, JSON.stringify(data));
  } catch {
    /* storage may be unavailable; settings are a convenience */
  }
}

function loadSettings() {
  try {
    const data = JSON.parse(localStorage.getItem(STORE_KEY) || "null");
    if (!data) return null;
    for (const id of PERSISTED) if (typeof data[id] === "string") $(id).value = data[id];
    if (!FORMATS.includes($("format").value)) $("format").value = "csv";
    if (typeof data.dense === "boolean") $("feat-dense").checked = data.dense;
    if (typeof data.pred === "boolean") $("feat-pred").checked = data.pred;
    if (TYPES.includes(data.type)) $(`type-${data.type}`).checked = true;
    if (data.weightsChoice && typeof data.weightsChoice === "object") Object.assign(state.weightsChoice, data.weightsChoice);
    else if (typeof data.weights === "string" && data.weights) state.weightsChoice.densenet = data.weights;
    if (Array.isArray(data.methods)) setChecked("saliency-method", data.methods);
    if (Array.isArray(data.styles)) setChecked("saliency-style", data.styles);
    if (Array.isArray(data.pathologies)) state.pathologies = { all: false, chosen: new Set(data.pathologies) };
    state.filenameEdited =
      typeof data.filenameEdited === "boolean" ? data.filenameEdited : $("filename").value.trim() !== suggestedFilename();
    return data;
  } catch {
    return null;
  }
}

// ───────────────────────────── native dialogs ─────────────────────────────
function nativeApi() {
  return window.pywebview && window.pywebview.api && typeof window.pywebview.api.choose_folder === "function"
    ? window.pywebview.api
    : null;
}

function enableNative() {
  if (state.native || !nativeApi()) return;
  state.native = true;
  document.body.classList.add("native");
  for (const n of document.querySelectorAll(".native-only")) n.hidden = false;
  for (const n of document.querySelectorAll(".browser-only")) n.hidden = true;
}

async function browse(kind, inputId) {
  const api = nativeApi();
  if (!api) return;
  try {
    const current = $(inputId).value.trim();
    const path = kind === "csv" ? await api.choose_file(current, "csv") : await api.choose_folder(current);
    if (path) {
      $(inputId).value = path;
      $(inputId).dispatchEvent(new Event("input", { bubbles: true }));
      $(inputId).dispatchEvent(new Event("change", { bubbles: true }));
    }
  } catch (err) {
    showError("The file dialog failed", err);
  }
}

// ───────────────────────────── section 1: folders ─────────────────────────────
function selectionForOptions() {
  const key = `${$("input-root").value.trim()}|${intOrRaw($("depth").value)}`;
  if (key !== state.foldersKey) return null; // the list is being refreshed for a new root or depth
  if (!state.folders.length) return null; // nothing listed: the backend uses every folder
  if (state.selected.size === state.folders.length) return null; // all
  return state.folders.filter((f) => state.selected.has(f));
}

const refreshFolders = debounce(async () => {
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
  } catch (err) {
    if (`${$("input-root").value.trim()}|${intOrRaw($("depth").value)}` !== key) return;
    setFolders([], key, err.message);
  }
  updatePatientLevels();
  scheduleValidate();
}, FOLDERS_DELAY_MS);

function setFolders(folders, key, message) {
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

function renderFolders(message = null) {
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

function updateFolderSummary(message = null) {
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

function updatePatientLevels() {
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

// ───────────────────────────── section 2: extraction type ─────────────────────────────
function currentType() {
  const checked = document.querySelector('input[name="etype"]:checked');
  return checked && TYPES.includes(checked.value) ? checked.value : "densenet";
}

function checkedValues(name) {
  return [...document.querySelectorAll(`input[name="${name}"]`)].filter((i) => i.checked).map((i) => i.value);
}

function setChecked(name, values) {
  for (const i of document.querySelectorAll(`input[name="${name}"]`)) i.checked = values.includes(i.value);
}

function suggestedFilename(type = currentType(), fmt = $("format").value) {
  return `${FILE_STEMS[type] || FILE_STEMS.densenet}.${FORMATS.includes(fmt) ? fmt : "csv"}`;
}

/** The output name follows type + format until the user types their own (their stem then keeps its name). */
function followFilename(formatChanged = false) {
  const input = $("filename");
  const fmt = $("format").value;
  const name = input.value.trim();
  if (!state.filenameEdited) {
    input.value = suggestedFilename();
  } else if (formatChanged && /\.(csv|parquet|arff)$/i.test(name)) {
    input.value = name.replace(/\.(csv|parquet|arff)$/i, `.${fmt}`);
  }
  state.filenameEdited = input.value.trim() !== suggestedFilename();
  updateSaliencyFolder();
}

function updateSaliencyFolder() {
  const stem = $("filename").value.trim().replace(/\.[A-Za-z]+$/, "") || FILE_STEMS.saliency;
  $("saliency-folder").textContent = `DATA/saliency/${stem}`;
}

/** Show the controls of the chosen type only (elements say which types they serve in data-types). */
function applyType() {
  const type = currentType();
  for (const node of document.querySelectorAll("[data-types]")) {
    node.hidden = !node.dataset.types.split(/\s+/).includes(type);
  }
  for (const seg of document.querySelectorAll(".type-choice .seg")) {
    seg.classList.toggle("checked", seg.querySelector("input").checked);
  }
  $("type-note").textContent = TYPE_NOTES[type] || "";
  $("weights-label").textContent = type === "onnx" ? "ONNX model" : "Model weights";
  populateWeights();
  followFilename();
}

function weightTypeOf(w) {
  if (w.type) return w.type;
  // older backends: guess from the name and the labels (docs/ui-types.md)
  if (/^densenet/.test(w.name) || (w.labels || []).length === 18) return "densenet";
  if (w.architecture === "onnx") return "onnx";
  return "encoder";
}

function weightsForType(type = currentType()) {
  const family = WEIGHTS_FAMILY[type];
  return family ? state.weights.filter((w) => weightTypeOf(w) === family) : [];
}

function typeDefaultWeights(type = currentType()) {
  if (type === "encoder") return DEFAULT_ENCODER;
  if (type === "onnx" || type === "fractal") return "";
  return state.defaultWeights;
}

async function loadWeights() {
  const select = $("weights");
  try {
    const res = await rpc("list_weights");
    state.weights = res.weights || [];
    state.defaultWeights = res.default || (state.weights[0] && state.weights[0].name) || "";
    const names = Array(18).fill("");
    for (const w of state.weights) {
      (w.labels || []).forEach((l, i) => {
        if (l && !names[i]) names[i] = l;
      });
    }
    state.pathologyNames = names;
    select.disabled = false;
    populateWeights();
  } catch (err) {
    select.replaceChildren(el("option", { value: "", text: "Weights unavailable" }));
    $("weights-info").textContent = err.message;
  }
}

/** Fill the weights list with the sets the current type runs, keeping each family's last choice. */
function populateWeights() {
  const select = $("weights");
  if (!state.weights.length && select.disabled) return; // still loading
  const type = currentType();
  const family = WEIGHTS_FAMILY[type];
  const list = weightsForType(type);
  const def = typeDefaultWeights(type);
  select.replaceChildren();
  if (!list.length) {
    const none = type === "onnx" ? "No ONNX model registered yet" : "No weight set of this kind";
    select.append(el("option", { value: "", text: none }));
  }
  for (const w of list) {
    const flags = [];
    const trained = (w.trained_labels || (w.labels || []).filter(Boolean)).length;
    if (weightTypeOf(w) !== "onnx") flags.push(trained ? `${trained} label${trained === 1 ? "" : "s"}` : "no predictions");
    if (w.source !== "user") flags.push(w.downloaded ? "downloaded" : "not downloaded");
    if (w.exported && weightTypeOf(w) !== "onnx") flags.push("exported");
    if (w.source === "user") flags.push("your weights");
    const isDef = w.name === def ? " (default)" : "";
    select.append(el("option", { value: w.name, text: `${w.name}${isDef} · ${flags.join(" · ")}` }));
  }
  if (family) {
    const names = list.map((w) => w.name);
    const want = state.weightsChoice[family];
    select.value = names.includes(want) ? want : names.includes(def) ? def : names[0] || "";
    if (select.value) state.weightsChoice[family] = select.value;
  }
  onWeightsShown();
}

/** Everything that depends on the chosen weight set. */
function onWeightsShown() {
  renderWeightsInfo();
  updateFeatureLabels();
  renderPathologies();
}

function currentWeights(name = $("weights").value) {
  return state.weights.find((w) => w.name === name) || null;
}

function labelsOf(name) {
  const w = currentWeights(name);
  return w && w.labels ? w.labels : [];
}

function featureCount(w) {
  const arch = (w && w.architecture) || "";
  if (arch.startsWith("densenet")) return { what: "Dense features", n: 1024, family: "densefeatures" };
  if (arch === "resnet-ae") return { what: "Latent code", n: 4608, family: "latent" };
  if (arch.startsWith("resnet")) return { what: "ResNet features", n: 2048, family: "resnetfeatures" };
  return { what: "Dense features", n: 0, family: "densefeatures" };
}

/** Name and size of the feature families for the chosen weights; an autoencoder gives no predictions. */
function updateFeatureLabels() {
  const type = currentType();
  const w = type === "densenet" || type === "encoder" ? currentWeights() : null;
  const fc = featureCount(w || { architecture: type === "encoder" ? "resnet50" : "densenet121" });
  $("feat-dense-text").replaceChildren(fc.what, " ", el("span", { class: "muted", text: fc.n ? `(${fc.n} per image)` : "" }));
  const pred = $("feat-pred");
  const noPred = Boolean(w) && !(w.labels || []).length;
  if (noPred && !pred.disabled) {
    pred.dataset.wanted = pred.checked ? "1" : "0";
    pred.checked = false;
    pred.disabled = true;
  } else if (!noPred && pred.disabled) {
    pred.checked = pred.dataset.wanted !== "0";
    delete pred.dataset.wanted;
    pred.disabled = false;
  }
  const heads = w ? (w.labels || []).length : 18;
  const trained = w ? (w.labels || []).filter(Boolean).length : 18;
  const predNote = noPred
    ? "(none: an autoencoder)"
    : trained < heads
      ? `(${heads} heads, ${trained} trained)`
      : `(${heads} pathologies)`;
  $("feat-pred-text").replaceChildren("Predictions ", el("span", { class: "muted", text: predNote }));
  const family = type === "fractal" ? "fractal_lac_r3" : type === "onnx" ? "output_0" : `${fc.family}_0`;
  $("prefix-example").textContent = `${$("prefix").value.trim() || "img"}_${family}`;
}

function renderWeightsInfo() {
  const box = $("weights-info");
  const type = currentType();
  const w = currentWeights();
  box.replaceChildren();
  if (!w) {
    if (type === "onnx" && state.weights.length) {
      box.append(
        el(
          "p",
          { class: "small muted" },
          "Register your model on the command line with ",
          el("code", { text: "radfeat models add-onnx NAME model.onnx" }),
          ", then reload the list (↻).",
        ),
      );
    }
    return;
  }
  const isOnnx = weightTypeOf(w) === "onnx";
  if (w.description) box.append(el("p", { class: "small", text: w.description }));
  const badges = el("p", { class: "badges" });
  if (isOnnx) {
    badges.append(el("span", { class: "badge ok", text: "✓ ONNX model" }));
    if (w.input_size) badges.append(el("span", { class: "badge", text: `Input ${w.input_size} × ${w.input_size}` }));
  } else {
    badges.append(
      el("span", {
        class: `badge ${w.downloaded ? "ok" : "todo"}`,
        text: w.downloaded ? "✓ Downloaded" : `Downloads on first use${w.size ? ` (${fmtSize(w.size)})` : ""}`,
      }),
      el("span", {
        class: `badge ${w.exported ? "ok" : "todo"}`,
        text: w.exported ? "✓ Exported to ONNX" : "Exported to ONNX on first use",
      }),
    );
  }
  if (w.source === "user") badges.append(el("span", { class: "badge user", text: "Registered by you" }));
  box.append(badges);
  if (isOnnx || type === "saliency") return; // saliency: the pathology picker below lists the labels
  const labels = w.labels || [];
  const trained = labels.filter(Boolean).length;
  if (!labels.length) {
    box.append(
      el("p", {
        class: "small muted",
        text: "An autoencoder: it gives no predictions; its features are the latent code.",
      }),
    );
    return;
  }
  box.append(
    el("p", {
      class: "small muted",
      text:
        trained < labels.length
          ? `Predicts ${trained} of the ${labels.length} pathologies; the other heads are untrained and their outputs carry no meaning.`
          : `Predicts all ${labels.length} pathologies.`,
    }),
  );
  const chips = el("ul", { class: "chips", "aria-label": `Labels predicted by ${w.name}` });
  labels.forEach((l, i) => {
    const name = l || state.pathologyNames[i] || `head ${i}`;
    chips.append(
      el(
        "li",
        { class: `chip ${l ? "trained" : "untrained"}`, title: l ? `Head ${i}: ${l}` : `Head ${i}: untrained` },
        l ? name : el("s", { text: name }),
        l ? null : el("span", { class: "sr-only", text: " (untrained)" }),
      ),
    );
  });
  box.append(chips);
}

// ───────────────────────────── section 2: saliency options ─────────────────────────────
function trainedLabels(w = currentWeights()) {
  if (!w) return [];
  return w.trained_labels || (w.labels || []).filter(Boolean);
}

function renderPathologies() {
  const list = $("path-list");
  const labels = currentType() === "saliency" ? trainedLabels() : [];
  const sel = state.pathologies;
  if (sel.all) sel.chosen = new Set(labels);
  list.replaceChildren();
  labels.forEach((label, i) => {
    const id = `path-${i}`;
    const cb = el("input", { type: "checkbox", id, value: label, name: "pathology" });
    cb.checked = sel.chosen.has(label);
    cb.addEventListener("change", () => {
      if (cb.checked) sel.chosen.add(label);
      else sel.chosen.delete(label);
      sel.all = labels.every((l) => sel.chosen.has(l));
      updatePathologySummary();
      scheduleValidate();
    });
    list.append(el("li", {}, el("label", { class: "check", for: id }, cb, el("span", { text: label }))));
  });
  updatePathologySummary();
}

function chosenPathologies() {
  const labels = trainedLabels();
  return labels.filter((l) => state.pathologies.chosen.has(l));
}

function updatePathologySummary() {
  const labels = currentType() === "saliency" ? trainedLabels() : [];
  const k = chosenPathologies().length;
  const n = labels.length;
  const all = $("path-all");
  all.checked = n > 0 && k === n;
  all.indeterminate = k > 0 && k < n;
  all.disabled = !n;
  const methods = checkedValues("saliency-method");
  const perPathology = methods.some((m) => CLASS_METHODS.has(m));
  $("path-list").classList.toggle("inactive", !perPathology);
  let text = n ? `${k} of ${n} selected` : "Choose a DenseNet weight set to list its labels.";
  if (n && !perPathology) text += " · Eigen-CAM maps do not depend on the pathology";
  $("pathologies-summary").textContent = text;
  // how many PNG files each image gives
  const styles = checkedValues("saliency-style").length;
  const perImage = (methods.filter((m) => CLASS_METHODS.has(m)).length * k + (methods.includes("eigencam") ? 1 : 0)) * styles;
  $("styles-summary").textContent = perImage ? `${perImage} map${perImage === 1 ? "" : "s"} (PNG) per image.` : "";
}

// ───────────────────────────── section 2: master table ─────────────────────────────
function masterOn() {
  return $("master-toggle").checked;
}

const inspectDates = debounce(async () => {
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

function guessColumn(columns, re, avoid) {
  const hit = (columns || []).find((c) => re.test(c) && c !== avoid);
  return hit || "";
}

function setDateColumns(columns) {
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

function renderDatesPreview(res) {
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

// ───────────────────────────── options + validation ─────────────────────────────
/** The options of the chosen type: fields a type does not use are left out (the backend's defaults apply). */
function collectOptions() {
  const type = currentType();
  const uses = (...types) => types.includes(type);
  const opts = {
    input: $("input-root").value.trim(),
    depth: intOrRaw($("depth").value),
    select: selectionForOptions(),
    type,
    filename: $("filename").value.trim(),
    format: $("format").value,
  };
  if (uses("densenet", "encoder", "onnx", "saliency")) opts.weights = $("weights").value || null;
  if (uses("densenet", "encoder")) {
    const features = [];
    if ($("feat-dense").checked) features.push("dense");
    if ($("feat-pred").checked && !$("feat-pred").disabled) features.push("predictions");
    opts.features = features;
    opts.precision = $("precision").value;
  }
  if (uses("densenet", "encoder", "saliency")) opts.preprocess = $("preprocess").value;
  if (!uses("saliency")) opts.prefix = $("prefix").value.trim();
  if (uses("fractal")) opts.max_box = intOrRaw($("max-box").value);
  else {
    opts.device = $("device").value;
    opts.batch_size = intOrRaw($("batch-size").value);
  }
  if (uses("saliency")) {
    opts.pathologies = state.pathologies.all ? null : chosenPathologies();
    opts.saliency_methods = checkedValues("saliency-method");
    opts.styles = checkedValues("saliency-style");
  }
  if (masterOn() && !uses("saliency")) {
    const fromDicom = $("dates-from-dicom").checked;
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
  const list = (id) => $(id).value.split(",").map((s) => s.trim()).filter(Boolean);
  if (list("dicom-tags").length) opts.dicom_tags = list("dicom-tags");
  if (list("views").length) opts.views = list("views");
  if ($("dicom-voi-lut").checked) opts.dicom_voi_lut = true;
  return opts;
}

const FIELD_FOCUS = {
  type: "type-densenet",
  max_box: "max-box",
  pathologies: "path-all",
  saliency_methods: "method-gradcam",
  styles: "style-gray",
  format: "format",
  master_table: "master-toggle",
  input: "input-root",
  depth: "depth",
  select: "folders-all",
  weights: "weights",
  features: "feat-dense",
  prefix: "prefix",
  filename: "filename",
  preprocess: "preprocess",
  device: "device",
  precision: "precision",
  batch_size: "batch-size",
  dicom_tags: "dicom-tags",
  views: "views",
  dicom_voi_lut: "dicom-voi-lut",
  "master_table.dates_csv": "dates-csv",
  "master_table.filename_column": "filename-col",
  "master_table.date_column": "date-col",
  "master_table.patient_level": "patient-level",
};

const FIELD_NAMES = {
  type: "Extraction type",
  max_box: "Largest box size",
  pathologies: "Pathologies",
  saliency_methods: "Saliency methods",
  styles: "Map styles",
  format: "Output format",
  master_table: "Master table",
  input: "Root folder",
  depth: "Folder depth",
  select: "Folders",
  weights: "Model weights",
  features: "Features",
  prefix: "Column prefix",
  filename: "Output file name",
  workspace: "Workspace",
  preprocess: "Preprocessing",
  device: "Device",
  precision: "Precision",
  batch_size: "Batch size",
  dicom_tags: "DICOM header columns",
  views: "DICOM views",
  dicom_voi_lut: "DICOM VOI LUT",
  "master_table.dates_csv": "Dates CSV",
  "master_table.filename_column": "File name column",
  "master_table.date_column": "Date column",
  "master_table.patient_level": "Patient level",
};

let validateTimer = null;

function scheduleValidate() {
  clearTimeout(validateTimer);
  $("extract-btn").dataset.pending = "1";
  validateTimer = setTimeout(validateNow, VALIDATE_DELAY_MS);
  saveSettings();
}

async function validateNow() {
  const seq = ++state.validation.seq;
  const options = collectOptions();
  let res;
  try {
    res = await rpc("validate_options", { options });
  } catch (err) {
    if (seq !== state.validation.seq) return;
    res = { valid: false, problems: problemsFromError(err), output_path: "" };
  }
  if (seq !== state.validation.seq) return; // a newer validation is under way
  state.validation.valid = Boolean(res.valid);
  state.validation.problems = res.problems || [];
  state.validation.outputPath = res.output_path || "";
  delete $("extract-btn").dataset.pending;
  renderProblems();
}

function problemsFromError(err) {
  if (err && err.data && Array.isArray(err.data.problems)) return err.data.problems;
  return [{ field: "", message: err instanceof Error ? err.message : readable(err) }];
}

function renderProblems() {
  const problems = state.validation.problems;
  const byField = new Map();
  for (const p of problems) {
    const f = p.field || "";
    if (!byField.has(f)) byField.set(f, []);
    byField.get(f).push(p.message);
  }
  for (const slot of document.querySelectorAll("[data-problem]")) {
    const msgs = byField.get(slot.dataset.problem) || [];
    slot.textContent = msgs.join(" ");
    const field = slot.closest("[data-field]");
    if (field) field.classList.toggle("invalid", msgs.length > 0);
    const target = $(FIELD_FOCUS[slot.dataset.problem] || "");
    if (target) {
      if (msgs.length) target.setAttribute("aria-invalid", "true");
      else target.removeAttribute("aria-invalid");
    }
  }
  const list = $("problem-list");
  list.replaceChildren();
  for (const p of problems) {
    const focusId = FIELD_FOCUS[p.field];
    const name = FIELD_NAMES[p.field] || "";
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
  const valid = state.validation.valid && problems.length === 0;
  $("invalid-warning").hidden = valid;
  $("valid-note").hidden = !valid;
  $("output-path-value").textContent = state.validation.outputPath || "—";
  updateExtractButton();
}

function focusField(id) {
  const node = $(id);
  if (!node) return;
  const details = node.closest("details");
  if (details) details.open = true;
  if (node.closest("#master-panel") && !masterOn()) return;
  if (node.closest("[hidden]")) return;
  node.focus();
  node.scrollIntoView({ block: "center", behavior: "smooth" });
}

function updateExtractButton() {
  const running = state.job && !TERMINAL.has(state.job.state);
  $("extract-btn").disabled = running || !state.validation.valid || state.validation.problems.length > 0;
  $("extract-btn").textContent = running ? "Extracting…" : "Extract data";
}

// ───────────────────────────── section 3: the job ─────────────────────────────
async function startExtraction() {
  if ($("extract-btn").disabled) return;
  hideError();
  const options = collectOptions();
  $("extract-btn").disabled = true;
  let res;
  try {
    res = await rpc("start_extraction", { options });
  } catch (err) {
    if (err.data && Array.isArray(err.data.problems)) {
      state.validation.valid = false;
      state.validation.problems = err.data.problems;
      renderProblems();
    } else if (err.code === BUSY && err.data && err.data.job_id && !(state.job && state.job.id === err.data.job_id)) {
      showError("Another extraction is running", err);
      followJob(err.data.job_id, null, "");
    } else {
      showError("The extraction could not start", err);
    }
    updateExtractButton();
    return;
  }
  followJob(res.job_id, options, res.output || state.validation.outputPath);
}

/** Show and poll a job: one this page started, or one found running (page reloaded, busy). */
function followJob(jobId, options, output) {
  state.job = { id: jobId, options: options || { input: "", weights: "" }, state: "queued", output };
  $("progress-block").hidden = false;
  $("job-result").hidden = true;
  $("job-result").replaceChildren();
  $("cancel-btn").hidden = false;
  $("cancel-btn").disabled = false;
  $("cancel-btn").textContent = "Cancel";
  $("log").textContent = "";
  $("log-count").textContent = "";
  setProgress({ state: "queued", stage: "queued", done: 0, total: 0 });
  updateExtractButton();
  pollJob(jobId);
}

async function pollJob(jobId) {
  if (!state.job || state.job.id !== jobId) return;
  let st;
  try {
    st = await rpc("job_status", { job_id: jobId });
  } catch (err) {
    if (!state.job || state.job.id !== jobId) return;
    state.job.misses = (state.job.misses || 0) + 1;
    if (state.job.misses >= 6) {
      showError("Lost track of the extraction", err);
      finishJob({ state: "failed", error: err.message });
      return;
    }
    setTimeout(() => pollJob(jobId), POLL_MS * 2);
    return;
  }
  if (!state.job || state.job.id !== jobId) return;
  state.job.misses = 0;
  state.job.state = st.state;
  if (st.output) state.job.output = st.output;
  if (!state.job.options.weights && st.weights) state.job.options.weights = st.weights;
  setProgress(st);
  renderLog(st);
  if (TERMINAL.has(st.state)) finishJob(st);
  else setTimeout(() => pollJob(jobId), POLL_MS);
}

function stageLabel(stage, jobState) {
  if (jobState === "queued") return "Queued";
  if (jobState === "done") return "Done";
  if (jobState === "cancelled") return "Cancelled";
  if (jobState === "failed") return "Failed";
  const s = String(stage || "running").replace(/[_-]+/g, " ");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function setProgress(st) {
  const total = Number(st.total) || 0;
  const done = Number(st.done) || 0;
  let pct = total > 0 ? Math.min(100, (done / total) * 100) : 0;
  if (st.state === "done") pct = 100;
  const rounded = Math.floor(pct);
  $("progress-bar").style.width = `${pct}%`;
  $("progress").setAttribute("aria-valuenow", String(rounded));
  $("progress").setAttribute("aria-valuetext", `${rounded} percent, ${done} of ${total} images`);
  $("progress").dataset.state = st.state || "running";
  $("progress-pct").textContent = `${rounded} %`;
  const stage = stageLabel(st.stage, st.state);
  $("progress-stage").textContent = st.message && !TERMINAL.has(st.state) ? `${stage} — ${st.message}` : stage;
  const parts = [];
  if (total) parts.push(`${done} / ${total} images`);
  const ips = Number(st.images_per_s);
  if (Number.isFinite(ips) && ips > 0) parts.push(`${ips.toFixed(ips >= 10 ? 0 : 1)} images/s`);
  if (!TERMINAL.has(st.state) && total) parts.push(`ETA ${fmtDuration(st.eta_s)}`);
  if (st.failed) parts.push(`${st.failed} failed`);
  $("progress-stats").textContent = parts.join(" · ");
}

const LOG_KEEP = 2000;

/** job_status gives the last lines and a running count: keep the whole log here (up to LOG_KEEP lines). */
function renderLog(st) {
  const job = state.job;
  if (!job || st.log === undefined || st.log === null) return;
  const recent = (Array.isArray(st.log) ? st.log : String(st.log).split(/\r?\n/)).map(readableLogLine);
  job.logLines = job.logLines || [];
  job.logSeen = job.logSeen || 0;
  if (Number.isInteger(st.log_count)) {
    const fresh = Math.min(Math.max(0, st.log_count - job.logSeen), recent.length);
    if (fresh) job.logLines.push(...recent.slice(recent.length - fresh));
    job.logSeen = Math.max(job.logSeen, st.log_count);
  } else {
    job.logLines = recent; // no count: show what the backend keeps
  }
  if (job.logLines.length > LOG_KEEP) job.logLines.splice(0, job.logLines.length - LOG_KEEP);
  const text = job.logLines.join("\n");
  const pre = $("log");
  if (pre.textContent === text) return;
  const atBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24;
  pre.textContent = text;
  if (atBottom) pre.scrollTop = pre.scrollHeight;
  const n = Number.isInteger(st.log_count) ? st.log_count : job.logLines.length;
  $("log-count").textContent = n ? `(${n} line${n === 1 ? "" : "s"})` : "";
}

function readableLogLine(line) {
  return typeof line === "string" ? line : JSON.stringify(line);
}

async function cancelJob() {
  if (!state.job) return;
  $("cancel-btn").disabled = true;
  $("cancel-btn").textContent = "Cancelling…";
  try {
    await rpc("cancel_job", { job_id: state.job.id });
  } catch (err) {
    showError("The extraction could not be cancelled", err);
    $("cancel-btn").disabled = false;
    $("cancel-btn").textContent = "Cancel";
  }
}

function finishJob(st) {
  const job = state.job;
  $("cancel-btn").hidden = true;
  const box = $("job-result");
  box.replaceChildren();
  box.hidden = false;
  box.dataset.state = st.state;
  const summary = st.summary || {};
  const output = st.output || summary.output || (job && job.output) || "";
  if (st.state === "done") {
    const ok = summary.ok ?? st.done;
    const secs = summary.seconds;
    box.append(
      el(
        "p",
        {},
        el("strong", { text: "Extraction finished. " }),
        `${ok} image${ok === 1 ? "" : "s"}${Number.isFinite(Number(secs)) && secs !== null ? ` in ${fmtSeconds(secs)}` : ""}`,
        summary.resumed ? ` (resumed ${summary.resumed} from an earlier run)` : "",
        ". Saved to ",
        el("code", { text: output }),
      ),
    );
    const maps = saliencyLogLine([...((job && job.logLines) || []), ...(Array.isArray(st.log) ? st.log : [])]);
    if (maps) {
      box.append(
        el(
          "p",
          { class: "small" },
          `${maps.count} saliency map${maps.count === 1 ? "" : "s"} (PNG) written under `,
          el("code", { text: maps.folder }),
          ". Show the table below and pick a row to see an image’s maps.",
        ),
      );
    }
    if (summary.master_table && typeof summary.master_table === "object") {
      const mt = summary.master_table;
      const bits = Object.entries(mt)
        .filter(([, v]) => typeof v === "number" || typeof v === "string")
        .map(([k, v]) => `${k.replace(/_/g, " ")}: ${v}`);
      if (bits.length) box.append(el("p", { class: "small", text: `Master table — ${bits.join(" · ")}` }));
    }
  } else if (st.state === "cancelled") {
    box.append(
      el(
        "p",
        {},
        el("strong", { text: "Extraction cancelled. " }),
        `${st.done || 0} of ${st.total || 0} images were processed; the partial table is kept and pressing “Extract data” again resumes it.`,
      ),
    );
  } else {
    const reason = st.error || summary.error || lastLogLine(st.log) || "The extraction failed.";
    box.append(el("p", {}, el("strong", { text: "Extraction failed. " }), readable(reason)));
    if (Array.isArray(st.problems) && st.problems.length) {
      state.validation.valid = false;
      state.validation.problems = st.problems;
      renderProblems();
    }
  }
  const errors = st.errors || summary.errors || [];
  if (errors.length) {
    const det = el("details", { class: "failed-list" });
    det.append(el("summary", { text: `${errors.length} image${errors.length === 1 ? "" : "s"} could not be read` }));
    const ul = el("ul");
    for (const e of errors.slice(0, 200)) {
      ul.append(el("li", {}, el("code", { text: e.path || "" }), ` — ${readable(e.reason || "")}`));
    }
    det.append(ul);
    if (summary.errors_path) det.append(el("p", { class: "small muted" }, "Full list: ", el("code", { text: summary.errors_path })));
    box.append(det);
  }
  if (job) {
    job.state = st.state;
    if (output && st.state !== "failed") {
      state.lastJob = { options: job.options, output };
      refreshFiles(output);
    }
  }
  updateExtractButton();
  scheduleValidate();
}

function saliencyLogLine(lines) {
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /Saliency maps: (\d+) PNG file\(s\) written under (.+)$/.exec(String(lines[i]));
    if (m) return { count: Number(m[1]), folder: m[2].trim() };
  }
  return null;
}

function lastLogLine(log) {
  if (!log) return "";
  const lines = Array.isArray(log) ? log : String(log).split(/\r?\n/);
  for (let i = lines.length - 1; i >= 0; i--) if (String(lines[i]).trim()) return String(lines[i]);
  return "";
}

async function resumeRunningJob() {
  try {
    const res = await rpc("list_jobs");
    const running = (res.jobs || []).filter((j) => !TERMINAL.has(j.state));
    if (running.length && !state.job) {
      const j = running[running.length - 1];
      followJob(j.job_id, null, j.output || "");
    }
  } catch {
    /* list_jobs is a convenience; nothing to resume */
  }
}

// ───────────────────────────── section 4: the table ─────────────────────────────
async function refreshFiles(preferred = null) {
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

async function loadTable(path, offset) {
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

function visibleColumns() {
  const hideDense = $("hide-dense").checked;
  return state.table.columns.map((c, i) => i).filter((i) => !(hideDense && DENSE_RE.test(state.table.columns[i])));
}

function stickyCount(columns) {
  let n = 0;
  for (const c of columns) {
    if (DENSE_RE.test(c) || PRED_RE.test(c) || FEATURE_RE.test(c)) break;
    if (state.table.saliency && !(LEVEL_RE.test(c) || c.toLowerCase() === "filename")) break; // the image's own columns
    n += 1;
  }
  return Math.min(n, 4);
}

function renderTable() {
  const { columns, rows, offset, total } = state.table;
  const table = $("result-table");
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
      tabindex: "0",
      "data-row": String(r),
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

function layoutSticky() {
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

function rowTitle(row) {
  const { columns } = state.table;
  if (state.table.saliency) {
    const keep = columns.map((c, i) => i).filter((i) => !["path", "prediction"].includes(columns[i].toLowerCase()));
    return keep.map((i) => fmtCell(row[i])).filter(Boolean).join(" / ");
  }
  const idCols = columns.map((c, i) => i).filter((i) => !DENSE_RE.test(columns[i]) && !PRED_RE.test(columns[i]));
  return idCols.slice(0, 4).map((i) => fmtCell(row[i])).join(" / ");
}

function onRowKey(ev, r) {
  const rows = $("result-table").querySelectorAll("tbody tr[data-row]");
  if (ev.key === "Enter" || ev.key === " ") {
    ev.preventDefault();
    pickRow(r);
  } else if (ev.key === "ArrowDown" && r + 1 < rows.length) {
    ev.preventDefault();
    rows[r + 1].focus();
  } else if (ev.key === "ArrowUp" && r > 0) {
    ev.preventDefault();
    rows[r - 1].focus();
  }
}

function tableContext() {
  // The table's own job (if it came from this page) knows its root and weights.
  let opts = null;
  if (state.lastJob && state.lastJob.output === state.table.path) opts = state.lastJob.options;
  else if (state.job && state.job.output === state.table.path) opts = state.job.options;
  // Otherwise the table's provenance file (listed by list_files) says which weights and folder made it.
  const file = (state.files || []).find((f) => f.path === state.table.path) || {};
  opts = opts || {};
  const weights = opts.weights || file.weights;
  return {
    input: opts.input || file.input || $("input-root").value.trim(),
    weights: weights || $("weights").value,
    guessed: !weights,
  };
}

function imagePathOf(row) {
  const { columns } = state.table;
  const lower = columns.map((c) => c.toLowerCase());
  // (a saliency listing's `path` is the map, not the source image)
  const pathIdx = lower.findIndex((c) => (c === "path" && !state.table.saliency) || c === "image_path" || c === "filepath");
  if (pathIdx >= 0 && row[pathIdx]) return String(row[pathIdx]);
  const fileIdx = lower.findIndex((c) => c === "filename" || c === "file_name" || c === "file");
  if (fileIdx < 0 || !row[fileIdx]) return null;
  const levels = columns
    .map((c, i) => ({ m: LEVEL_RE.exec(c), i }))
    .filter((x) => x.m)
    .sort((a, b) => Number(a.m[1]) - Number(b.m[1]))
    .map((x) => row[x.i]);
  const ctx = tableContext();
  if (!ctx.input) return null;
  return joinPath(ctx.input, ...levels, row[fileIdx]);
}

async function pickRow(r) {
  const { rows, columns } = state.table;
  const row = rows[r];
  if (!row) return;
  state.table.picked = r;
  const seq = (state.table.pickSeq = (state.table.pickSeq || 0) + 1);
  for (const tr of $("result-table").querySelectorAll("tbody tr[data-row]")) {
    const on = Number(tr.dataset.row) === r;
    tr.classList.toggle("picked", on);
    if (on) tr.setAttribute("aria-current", "true");
    else tr.removeAttribute("aria-current");
  }
  $("detail").hidden = false;
  const ctx = tableContext();
  const saliency = state.table.saliency;
  $("chart-box").hidden = saliency;
  $("maps-box").hidden = !saliency;
  if (saliency) renderMaps(r, seq);
  else renderChart(row, columns, ctx);
  const frame = $("thumb-frame");
  const caption = $("thumb-caption");
  const path = imagePathOf(row);
  frame.replaceChildren(el("span", { class: "muted", text: path ? "Loading image…" : "No image" }));
  caption.textContent = path || "This table has no file name column (master-table layout), so the image cannot be located.";
  if (!path) return;
  try {
    const res = await rpc("thumbnail", { path, size: 320 });
    if (state.table.pickSeq !== seq) return;
    frame.replaceChildren(el("img", { src: res.data_url, alt: `Chest X-ray ${path.split(/[\\/]/).slice(-2).join("/")}` }));
  } catch (err) {
    if (state.table.pickSeq !== seq) return;
    frame.replaceChildren(el("span", { class: "error-text", text: `Image unavailable: ${err.message}` }));
  }
}

// ───────────────────────────── section 4: saliency maps of a picked image ─────────────────────────────
function saliencyColumns(columns) {
  const lower = columns.map((c) => c.toLowerCase());
  const levels = columns
    .map((c, i) => ({ m: LEVEL_RE.exec(c), i }))
    .filter((x) => x.m)
    .sort((a, b) => Number(a.m[1]) - Number(b.m[1]))
    .map((x) => x.i);
  const at = (name) => lower.indexOf(name);
  return {
    levels,
    filename: at("filename"),
    pathology: at("pathology"),
    method: at("method"),
    style: at("style"),
    prediction: at("prediction"),
    path: at("path"),
  };
}

function imageKey(row, cols) {
  return JSON.stringify([...cols.levels.map((i) => row[i]), cols.filename >= 0 ? row[cols.filename] : null]);
}

/**
 * Every listing row of one image.  The engine writes an image's maps as consecutive rows, so read a page of
 * the listing around the picked row and widen it while the image's rows reach its edge (read_table pages
 * hold at most 1000 rows).
 */
async function mapsOfImage(absIndex, key, cols) {
  const cache = state.table.maps;
  if (cache.has(key)) return cache.get(key);
  const path = state.table.path;
  let total = state.table.total;
  const read = async (offset) => {
    const res = await rpc("read_table", { path, offset, limit: MAP_WINDOW });
    const columns = res.columns || [];
    if (Number.isInteger(res.total)) total = res.total;
    return (res.rows || []).map((r) => (Array.isArray(r) ? r : columns.map((c) => r[c])));
  };
  let start = Math.max(0, absIndex - MAP_WINDOW / 2);
  let rows = await read(start);
  let end = start + rows.length;
  while (start > 0 && rows.length && imageKey(rows[0], cols) === key) {
    const from = Math.max(0, start - MAP_WINDOW);
    rows = (await read(from)).slice(0, start - from).concat(rows);
    start = from;
  }
  while (end < total && rows.length && imageKey(rows[rows.length - 1], cols) === key) {
    const more = await read(end);
    if (!more.length) break;
    rows = rows.concat(more);
    end += more.length;
  }
  const mine = rows.filter((r) => imageKey(r, cols) === key);
  cache.set(key, mine);
  return mine;
}

const rank = (list, v) => {
  const i = list.indexOf(v);
  return i < 0 ? list.length : i;
};

function fmtPrediction(v) {
  if (v === null || v === undefined || v === "" || !Number.isFinite(Number(v))) return null;
  return Number(v).toFixed(3);
}

/** A grid of the picked image's maps: rows = method (and pathology), columns = styles. */
async function renderMaps(r, seq) {
  const { rows, columns, offset } = state.table;
  const row = rows[r];
  const cols = saliencyColumns(columns);
  const key = imageKey(row, cols);
  const wrap = $("maps-wrap");
  const caption = $("maps-caption");
  const ctx = tableContext();
  const imageName = [...cols.levels.map((i) => row[i]), row[cols.filename]].filter((x) => x !== null && x !== "").join("/");
  $("maps-title").textContent = `Saliency maps · ${ctx.weights || "unknown weights"}`;
  caption.textContent = `Loading the maps of ${imageName}…`;
  wrap.replaceChildren();
  let mine;
  try {
    mine = await mapsOfImage(offset + r, key, cols);
  } catch (err) {
    if (state.table.pickSeq !== seq) return;
    caption.textContent = "";
    wrap.replaceChildren(el("p", { class: "error-text", text: `The maps could not be listed: ${err.message}` }));
    return;
  }
  if (state.table.pickSeq !== seq) return;
  const groups = new Map();
  for (const m of mine) {
    const method = String(m[cols.method] ?? "");
    const pathology = m[cols.pathology] === null || m[cols.pathology] === undefined ? "" : String(m[cols.pathology]);
    const gk = `${method}\u0000${pathology}`;
    if (!groups.has(gk)) groups.set(gk, { method, pathology, prediction: m[cols.prediction], maps: new Map() });
    groups.get(gk).maps.set(String(m[cols.style] ?? ""), String(m[cols.path] ?? ""));
  }
  const ordered = [...groups.values()].sort((a, b) => rank(METHODS, a.method) - rank(METHODS, b.method));
  const styles = [...new Set(mine.map((m) => String(m[cols.style] ?? "")))].sort(
    (a, b) => rank(STYLES, a) - rank(STYLES, b),
  );
  if (!ordered.length) {
    caption.textContent = "";
    wrap.replaceChildren(el("p", { class: "muted", text: `No maps are listed for ${imageName}.` }));
    return;
  }
  const picked = {
    method: String(row[cols.method] ?? ""),
    pathology: row[cols.pathology] === null || row[cols.pathology] === undefined ? "" : String(row[cols.pathology]),
    style: String(row[cols.style] ?? ""),
  };
  const n = mine.length;
  caption.textContent = `${n} map${n === 1 ? "" : "s"} of ${imageName} · rows: method and pathology · columns: style; the picked map is outlined.`;
  const table = el("table", { class: "maps-grid" });
  table.append(el("caption", { class: "sr-only", text: `Saliency maps of ${imageName}` }));
  table.append(
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        el("th", { scope: "col", text: "Map" }),
        ...styles.map((st) => el("th", { scope: "col", text: STYLE_NAMES[st] || st })),
      ),
    ),
  );
  const tbody = el("tbody");
  const tasks = [];
  for (const g of ordered) {
    const methodName = METHOD_NAMES[g.method] || g.method;
    const pred = fmtPrediction(g.prediction);
    const head = el(
      "th",
      { scope: "row", class: "map-head" },
      el("span", { class: "map-method", text: methodName }),
      g.pathology ? el("span", { class: "map-pathology", text: g.pathology }) : null,
      el("span", {
        class: "map-pred",
        text: pred !== null ? `prediction ${pred}` : g.pathology ? "no prediction" : "one map per image",
      }),
    );
    const tr = el("tr", {}, head);
    for (const st of styles) {
      const path = g.maps.get(st);
      const current = g.method === picked.method && g.pathology === picked.pathology && st === picked.style;
      const frame = el("div", { class: "map-frame" }, el("span", { class: "muted small", text: path ? "…" : "—" }));
      const desc = `${methodName}${g.pathology ? ` · ${g.pathology}` : ""} · ${STYLE_NAMES[st] || st}${pred !== null ? ` · prediction ${pred}` : ""}`;
      tr.append(
        el(
          "td",
          { class: current ? "current" : null, "aria-current": current ? "true" : null },
          frame,
        ),
      );
      if (path) tasks.push({ path, frame, alt: desc });
    }
    tbody.append(tr);
  }
  table.append(tbody);
  wrap.replaceChildren(table);
  // bring the picked map into view inside the grid's own scroll area (the page itself does not move)
  const current = table.querySelector("td.current");
  if (current) {
    const box = wrap.getBoundingClientRect();
    const cell = current.getBoundingClientRect();
    const headH = table.tHead ? table.tHead.getBoundingClientRect().height : 0;
    if (cell.bottom > box.bottom || cell.top < box.top + headH) wrap.scrollTop += cell.top - box.top - headH - 8;
    if (cell.right > box.right || cell.left < box.left) wrap.scrollLeft += cell.left - box.left - 8;
  }
  await loadThumbnails(tasks, seq);
}

async function loadThumbnails(tasks, seq) {
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const t = tasks[next++];
      if (state.table.pickSeq !== seq) return;
      try {
        const res = await rpc("thumbnail", { path: t.path, size: MAP_SIZE });
        if (state.table.pickSeq !== seq) return;
        t.frame.replaceChildren(el("img", { src: res.data_url, alt: t.alt, title: t.path }));
      } catch (err) {
        if (state.table.pickSeq !== seq) return;
        t.frame.replaceChildren(el("span", { class: "error-text small", text: "Unavailable", title: err.message }));
      }
    }
  };
  await Promise.all(Array.from({ length: THUMB_CONCURRENCY }, worker));
}

function renderChart(row, columns, ctx) {
  const box = $("chart");
  box.replaceChildren();
  const preds = [];
  columns.forEach((c, i) => {
    const m = PRED_RE.exec(c);
    if (m) preds.push({ head: Number(m[1]), col: c, value: row[i] });
  });
  preds.sort((a, b) => a.head - b.head);
  const weightsName = ctx.weights || $("weights").value;
  $("chart-title").textContent = `Predictions · ${weightsName || "unknown weights"}`;
  if (!preds.length) {
    $("chart-title").textContent = "Features";
    const features = columns.filter((c) => !LEVEL_RE.test(c) && !/^(filename|file_name|file|path)$/i.test(c)).length;
    box.append(
      el("p", {
        class: "muted",
        text: `This table has no prediction columns; its ${features} feature column${features === 1 ? "" : "s"} are in the table above.`,
      }),
    );
    return;
  }
  const labels = labelsOf(weightsName);
  const values = preds.map((p) => (p.value === null || p.value === "" ? Number.NaN : Number(p.value)));
  const finite = values.filter(Number.isFinite);
  const lo = Math.min(0, ...finite);
  const hi = Math.max(1, ...finite);
  const W = 560;
  const labelW = 200;
  const valueW = 86;
  const barX = labelW + 8;
  const barW = W - barX - valueW;
  const rowH = 22;
  const top = 8;
  const H = top + preds.length * rowH + 24;
  const x = (v) => barX + ((v - lo) / (hi - lo)) * barW;
  const chart = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "bar-chart",
    role: "img",
    "aria-labelledby": "chart-title chart-desc",
  });
  const desc = preds
    .map((p, k) => {
      const name = labels[p.head] || state.pathologyNames[p.head] || `head ${p.head}`;
      const v = Number.isFinite(values[k]) ? values[k].toFixed(3) : "no value";
      return `${name}: ${v}${labels[p.head] ? "" : " (untrained)"}`;
    })
    .join("; ");
  chart.append(svg("desc", { id: "chart-desc" }, desc));
  const defs = svg("defs");
  const pat = svg("pattern", { id: "hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
  pat.append(svg("rect", { width: 6, height: 6, class: "hatch-bg" }), svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, class: "hatch-line" }));
  defs.append(pat);
  chart.append(defs);
  // grid: 0, 0.5, 1 (and the extremes when the values leave [0, 1])
  const ticks = [...new Set([lo, 0, 0.5, 1, hi])].filter((t) => t >= lo && t <= hi).sort((a, b) => a - b);
  const gridBottom = top + preds.length * rowH;
  for (const t of ticks) {
    chart.append(svg("line", { x1: x(t), x2: x(t), y1: top - 2, y2: gridBottom, class: t === 0 ? "axis" : "grid" }));
    chart.append(svg("text", { x: x(t), y: gridBottom + 15, class: "tick", "text-anchor": "middle" }, String(Number(t.toFixed(2)))));
  }
  preds.forEach((p, k) => {
    const trained = Boolean(labels[p.head]);
    const name = labels[p.head] || state.pathologyNames[p.head] || `head ${p.head}`;
    const y = top + k * rowH;
    const v = values[k];
    const g = svg("g", { class: trained ? "bar trained" : "bar untrained" });
    g.append(svg("title", {}, `${p.col}: ${Number.isFinite(v) ? v : "no value"}${trained ? "" : " — untrained head"}`));
    g.append(svg("text", { x: labelW, y: y + rowH / 2 + 4, "text-anchor": "end", class: "label" }, trained ? name : `${name} (untrained)`));
    if (Number.isFinite(v)) {
      const x0 = x(Math.min(0, v));
      const x1 = x(Math.max(0, v));
      g.append(svg("rect", { x: x0, y: y + 4, width: Math.max(1, x1 - x0), height: rowH - 8, rx: 2, class: "fill" }));
      g.append(svg("text", { x: W - valueW + 8, y: y + rowH / 2 + 4, class: "value" }, v.toFixed(3)));
    } else {
      g.append(svg("text", { x: W - valueW + 8, y: y + rowH / 2 + 4, class: "value" }, "—"));
    }
    chart.append(g);
  });
  box.append(chart);
  const note = [];
  if (labels.some((l) => !l)) note.push("Hatched bars are untrained heads: their values carry no meaning.");
  if (ctx.guessed) note.push(`Label names are those of the selected weight set (${weightsName}).`);
  if (note.length) box.append(el("p", { class: "small muted", text: note.join(" ") }));
}

// ───────────────────────────── wiring ─────────────────────────────
function wire() {
  $("banner-close").addEventListener("click", hideError);

  // section 1
  $("input-root").addEventListener("input", () => {
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

  // section 2
  for (const radio of document.querySelectorAll('input[name="etype"]')) {
    radio.addEventListener("change", () => {
      applyType();
      scheduleValidate();
    });
  }
  $("weights").addEventListener("change", () => {
    const family = WEIGHTS_FAMILY[currentType()];
    if (family && $("weights").value) state.weightsChoice[family] = $("weights").value;
    onWeightsShown();
    scheduleValidate();
  });
  $("weights-refresh").addEventListener("click", async () => {
    await loadWeights();
    scheduleValidate();
  });
  for (const id of ["feat-dense", "feat-pred", "preprocess", "prefix", "patient-level", "patient-int", "filename-col", "date-col",
    "dicom-tags", "views", "dicom-voi-lut", "dates-from-dicom", "patient-from-dicom"]) {
    $(id).addEventListener(["prefix", "dicom-tags", "views"].includes(id) ? "input" : "change", scheduleValidate);
  }
  $("prefix").addEventListener("input", updateFeatureLabels);
  $("dates-from-dicom").addEventListener("change", (ev) => {
    // dates from the headers: the dates CSV and its columns are not used
    for (const id of ["dates-csv", "filename-col", "date-col"]) $(id).closest(".field").hidden = ev.target.checked;
  });
  $("max-box").addEventListener("input", scheduleValidate);
  $("path-all").addEventListener("change", (ev) => {
    state.pathologies = { all: ev.target.checked, chosen: new Set(ev.target.checked ? trainedLabels() : []) };
    renderPathologies();
    scheduleValidate();
  });
  for (const box of document.querySelectorAll('input[name="saliency-method"], input[name="saliency-style"]')) {
    box.addEventListener("change", () => {
      updatePathologySummary();
      scheduleValidate();
    });
  }
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

  // section 3
  $("filename").addEventListener("input", () => {
    state.filenameEdited = $("filename").value.trim() !== suggestedFilename();
    updateSaliencyFolder();
    scheduleValidate();
  });
  $("format").addEventListener("change", () => {
    followFilename(true);
    scheduleValidate();
  });
  $("batch-size").addEventListener("input", scheduleValidate);
  for (const id of ["device", "precision"]) $(id).addEventListener("change", scheduleValidate);
  $("extract-btn").addEventListener("click", startExtraction);
  $("cancel-btn").addEventListener("click", cancelJob);

  // section 4
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
  window.addEventListener("resize", debounce(layoutSticky, 100));

  // native dialogs (pywebview injects its API after load, then fires this event)
  window.addEventListener("pywebviewready", enableNative);
  enableNative();
}

async function init() {
  const meta = document.querySelector('meta[name="radfeat-token"]');
  state.token = meta ? meta.getAttribute("content") || "" : "";
  wire();
  loadSettings();
  updatePatientLevels();
  applyType();
  if (!state.token || state.token === TOKEN_PLACEHOLDER) {
    setConnection("down", "No access token");
    showError(
      "This page was not opened by radfeat",
      "Open it from “radfeat gui”, or from the address printed by “radfeat serve”.",
    );
  }
  try {
    const v = await rpc("version");
    setConnection("up", `Connected · radfeat ${v.radfeat}`);
    const providers = Array.isArray(v.providers) ? v.providers.join(", ") : "";
    $("version").textContent = `radfeat ${v.radfeat} · onnxruntime ${v.onnxruntime}${providers ? ` (${providers})` : ""}`;
  } catch (err) {
    setConnection("down", "Backend unreachable");
    showError("Cannot talk to the radfeat backend", err);
  }
  await Promise.all([loadWeights(), refreshFiles(), resumeRunningJob()]);
  if ($("input-root").value.trim()) refreshFolders();
  scheduleValidate();
}

document.addEventListener("DOMContentLoaded", init);
