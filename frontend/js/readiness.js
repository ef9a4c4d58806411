// Readiness (validate_options → ready, readiness): valid options that still cannot run here, said before Extract,
// each with what the user can do next to its field — download or import weights, another folder depth,
// another output name or replacing the table.
import { $, el, fmtSize, plural } from "./dom.js";
import { nativeApi } from "./native.js";
import { rpc } from "./rpc.js";
import { readable } from "./status.js";
import { state } from "./store.js";

const PROBE_TTL_MS = 60_000;
const probes = new Map(); // weights name -> {at, result}
let hooks = { revalidate: () => {}, reloadWeights: async () => {}, setDepth: () => {}, setFilename: () => {}, useWeights: () => {} };

export function setReadinessHooks(h) {
  hooks = { ...hooks, ...h };
}

/** Entries that keep Extract disabled (output_exists stops blocking once the user chose to replace it). */
export function blockingEntries() {
  return (state.validation.readiness || []).filter((e) => e.blocking !== false);
}

export function renderReadiness() {
  for (const old of document.querySelectorAll(".readiness")) old.remove();
  for (const entry of state.validation.readiness || []) {
    const field = document.querySelector(`[data-field="${entry.field}"]`) || $("validity");
    const box = el("div", { class: `readiness${entry.blocking === false ? " notice" : ""}`, "data-code": entry.code });
    box.append(el("p", { class: "readiness-text", text: entry.message }));
    const actions = el("div", { class: "readiness-actions" });
    if (entry.code === "weights_missing") weightsActions(entry, actions);
    else if (entry.code === "no_images") depthActions(entry, actions);
    else if (entry.code === "output_exists") outputActions(entry, actions);
    if (actions.childNodes.length) box.append(actions);
    const slot = field.querySelector(".problem");
    if (slot) slot.after(box);
    else field.append(box);
  }
}

function button(text, onclick, cls = "secondary") {
  return el("button", { type: "button", class: `btn ${cls}`, onclick, text });
}

// ── weights that are not on this machine ──
function weightsActions(entry, actions) {
  const name = entry.name || $("weights").value;
  const def = state.validation.defaultWeights;
  if (def && def !== name) actions.append(button(`Use ${def} (on this machine)`, () => hooks.useWeights(def), "primary"));
  if ((entry.actions || []).includes("download")) {
    const dl = button("Checking the network…", () => startDownload(name, actions));
    dl.disabled = true;
    dl.dataset.action = "download";
    const note = el("span", { class: "small muted", "data-role": "probe" });
    actions.append(dl, note);
    probe(name).then((res) => {
      if (!dl.isConnected) return;
      if (res.reachable) {
        dl.disabled = false;
        dl.textContent = `Download ${name}${res.size ? ` (${fmtSize(res.size)})` : ""}`;
      } else {
        dl.remove();
        note.textContent = res.message || "The download server cannot be reached from this machine.";
      }
    });
  }
  if ((entry.actions || []).includes("import")) importActions(actions);
}

async function probe(name) {
  const hit = probes.get(name);
  if (hit && Date.now() - hit.at < PROBE_TTL_MS) return hit.result;
  let result;
  try {
    result = await rpc("probe_weights", { name });
  } catch (err) {
    result = { reachable: false, message: readable(err.message) };
  }
  probes.set(name, { at: Date.now(), result });
  return result;
}

function importActions(actions) {
  const api = nativeApi();
  if (api && typeof api.pick_files === "function") {
    actions.append(
      button("Import weight files…", async () => importPaths(await api.pick_files("", "weights"), actions)),
      button("Import a folder…", async () => {
        const folder = await api.pick_folder("");
        importPaths(folder ? [folder] : [], actions);
      }),
    );
    return;
  }
  const input = el("input", { type: "text", id: "import-path", autocomplete: "off", spellcheck: "false",
    placeholder: "/path/to/weights (a file or a folder)" });
  const go = button("Import", () => importPaths(input.value.trim() ? [input.value.trim()] : [], actions));
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") go.click();
  });
  actions.append(el("div", { class: "import-row" },
    el("label", { for: "import-path", class: "small", text: "Import weight files from this machine:" }), input, go));
}

async function importPaths(paths, actions) {
  if (!paths || !paths.length) return;
  const out = el("p", { class: "small", role: "status", text: "Importing…" });
  actions.append(out);
  try {
    const res = await rpc("import_weights", { paths });
    const got = (res.imported || []).map((i) => i.name);
    const skipped = (res.skipped || []).map((s) => `${s.path}: ${s.reason}`);
    out.textContent = [got.length ? `Imported ${got.join(", ")}.` : "Nothing was imported.", ...skipped].join(" ");
    if (got.length) {
      await hooks.reloadWeights();
      hooks.revalidate();
    }
  } catch (err) {
    out.textContent = `The import failed: ${err.message}`;
  }
}

async function startDownload(name, actions) {
  for (const b of actions.querySelectorAll("button")) b.disabled = true;
  const bar = el("progress", { max: "100", value: "0", "aria-label": `Download of ${name}` });
  const text = el("span", { class: "small", role: "status", text: "Connecting…" });
  const cancel = button("Cancel download", null, "ghost");
  actions.append(el("div", { class: "download-row" }, bar, text, cancel));
  let job;
  try {
    job = await rpc("download_weights", { name });
  } catch (err) {
    text.textContent = `The download could not start: ${err.message}`;
    return;
  }
  cancel.addEventListener("click", () => rpc("cancel_job", { job_id: job.job_id }).catch(() => {}));
  state.download = job.job_id;
  for (;;) {
    await new Promise((r) => setTimeout(r, 400));
    let st;
    try {
      st = await rpc("job_status", { job_id: job.job_id });
    } catch (err) {
      text.textContent = `Lost track of the download: ${err.message}`;
      return;
    }
    const total = Number(st.total) || 0;
    const done = Number(st.done) || 0;
    if (total) bar.value = Math.min(100, (done / total) * 100);
    text.textContent = total ? `${fmtSize(done)} of ${fmtSize(total)}` : `${fmtSize(done)} received`;
    if (st.state === "done") break;
    if (st.state === "failed" || st.state === "cancelled") {
      text.textContent = st.state === "cancelled" ? "Download cancelled; the next try continues where it stopped."
        : `The download failed: ${readable(st.error || "")}`;
      for (const b of actions.querySelectorAll("button")) b.disabled = false;
      cancel.remove();
      return;
    }
  }
  state.download = null;
  await hooks.reloadWeights();
  hooks.revalidate();
}

// ── no image at the chosen depth ──
function depthActions(entry, actions) {
  if (entry.suggested_depth) actions.append(button(`Use folder depth ${entry.suggested_depth}`, () => hooks.setDepth(entry.suggested_depth), "primary"));
}

export function depthSummary(depths) {
  const withImages = (depths || []).filter((d) => d.depth >= 1);
  if (!withImages.length) return "";
  return `Images by depth: ${withImages.map((d) => `${d.depth} → ${plural(d.images, "image")}`).join(" · ")}`;
}

// ── the table already exists ──
function outputActions(entry, actions) {
  if (entry.blocking === false) {
    actions.append(button("Keep the existing table", () => {
      state.overwrite = "";
      hooks.revalidate();
    }, "ghost"));
    return;
  }
  if (entry.suggested_filename) actions.append(button(`Use ${entry.suggested_filename}`, () => hooks.setFilename(entry.suggested_filename), "primary"));
  actions.append(button("Replace the existing table", () => {
    state.overwrite = $("filename").value.trim();
    hooks.revalidate();
  }, "danger"));
}

export function showStartRefusal(err) {
  if (!err.data || !Array.isArray(err.data.readiness)) return false;
  state.validation.ready = false;
  state.validation.readiness = err.data.readiness;
  if (Array.isArray(err.data.problems) && err.data.problems.length) state.validation.problems = err.data.problems;
  return true;
}
