// Losing the backend: say what happened, reconnect when it answers again, and offer to resume the runs that
// were interrupted (their rows are kept in <output>.partial with the options they were started with).
import { $, el, plural } from "./dom.js";
import { rpc } from "./rpc.js";
import { setConnection } from "./status.js";
import { state } from "./store.js";

const PING_MS = 2000;
let hooks = { follow: () => {}, finish: () => {}, poll: () => {}, revalidate: () => {}, showValidity: () => {} };

export function setReconnectHooks(h) {
  hooks = { ...hooks, ...h };
}

/** The backend stopped answering while a run was followed: never "failed", keep asking, explain. */
export function backendLost(jobId) {
  if (state.backend.lost) return;
  state.backend.lost = true;
  setConnection("down", "The radfeat backend is not answering");
  state.validation.unreachable = true; // nothing can be checked now: no "valid" on the page
  hooks.showValidity();
  $("progress-stage").textContent = "Waiting for the radfeat backend…";
  $("progress").dataset.state = "lost";
  $("progress-stats").textContent =
    "The backend does not answer: it was closed, or stopped. If it stopped, the rows already extracted are kept and " +
    "the run can be resumed. This page reconnects by itself when the backend is back at this address; a radfeat " +
    "started again gets a new address — open the page it shows, which offers to resume.";
  ping(jobId);
}

async function ping(jobId) {
  let v;
  try {
    v = await rpc("version");
  } catch {
    setTimeout(() => ping(jobId), PING_MS);
    return;
  }
  state.backend.lost = false;
  setConnection("up", `Connected · radfeat ${v.radfeat}`);
  hooks.revalidate();
  if (!v.instance || v.instance === state.backend.instance) {
    if (state.job && state.job.id === jobId) state.job.misses = 0;
    hooks.poll(jobId); // the same backend: the run goes on
    return;
  }
  state.backend.instance = v.instance; // another launch: the run it was doing was interrupted
  hooks.finish({ state: "cancelled", interrupted: true, resumable: true, done: state.job ? state.job.lastDone : 0,
    total: state.job ? state.job.lastTotal : 0, error: "radfeat was restarted while the run was going on." });
  offerPartialRuns();
}

/** Interrupted runs found in the workspace, each with a Resume button (the options it was started with). */
export async function offerPartialRuns() {
  let runs = [];
  try {
    runs = ((await rpc("list_partial_runs")).runs || []).filter((r) => r.resumable !== false && r.options && !r.running);
  } catch {
    return; // an older backend: nothing to offer
  }
  const box = $("partial-runs");
  box.replaceChildren();
  box.hidden = !runs.length;
  if (!runs.length) return;
  box.append(el("h3", { id: "partial-runs-h", text: `${plural(runs.length, "interrupted run")} in this workspace` }));
  const ul = el("ul");
  for (const run of runs) {
    const resume = el("button", { type: "button", class: "btn secondary", text: `Resume ${run.filename}` });
    resume.addEventListener("click", () => resumeRun(run, resume));
    const when = run.modified ? ` · last written ${String(run.modified).replace("T", " ").replace("Z", " UTC")}` : "";
    ul.append(el("li", {}, el("span", {}, el("code", { text: run.filename }), ` — ${plural(run.rows_done || 0, "row")} done${when} `), resume));
  }
  box.append(ul);
}

async function resumeRun(run, btn) {
  btn.disabled = true;
  const options = { ...run.options };
  for (const k of ["output", "workspace", "resume"]) delete options[k];
  options.filename = run.filename;
  try {
    const res = await rpc("start_extraction", { options });
    btn.closest("li").remove();
    if (!$("partial-runs").querySelector("li")) $("partial-runs").hidden = true;
    hooks.follow(res.job_id, options, res.output || run.output);
  } catch (err) {
    btn.disabled = false;
    btn.after(el("span", { class: "small error-text", text: ` ${err.message}` }));
  }
}
