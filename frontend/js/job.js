// Section 3: the extraction job — start, poll, progress, log, cancel, result.
import { $, el, fmtDuration, fmtSeconds } from "./dom.js";
import { BUSY, rpc } from "./rpc.js";
import { hideError, readable, showError } from "./status.js";
import { TERMINAL, state } from "./store.js";
import { refreshFiles } from "./table.js";
import { collectOptions, renderProblems, scheduleValidate, updateExtractButton } from "./validate.js";

const POLL_MS = 500;
const LOG_KEEP = 2000;

export async function startExtraction() {
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
export function followJob(jobId, options, output) {
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

export async function pollJob(jobId) {
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

export function stageLabel(stage, jobState) {
  if (jobState === "queued") return "Queued";
  if (jobState === "done") return "Done";
  if (jobState === "cancelled") return "Cancelled";
  if (jobState === "failed") return "Failed";
  const s = String(stage || "running").replace(/[_-]+/g, " ");
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export function setProgress(st) {
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


/** job_status gives the last lines and a running count: keep the whole log here (up to LOG_KEEP lines). */
export function renderLog(st) {
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

export function readableLogLine(line) {
  return typeof line === "string" ? line : JSON.stringify(line);
}

export async function cancelJob() {
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

export function finishJob(st) {
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

export function saliencyLogLine(lines) {
  for (let i = lines.length - 1; i >= 0; i--) {
    const m = /Saliency maps: (\d+) PNG file\(s\) written under (.+)$/.exec(String(lines[i]));
    if (m) return { count: Number(m[1]), folder: m[2].trim() };
  }
  return null;
}

export function lastLogLine(log) {
  if (!log) return "";
  const lines = Array.isArray(log) ? log : String(log).split(/\r?\n/);
  for (let i = lines.length - 1; i >= 0; i--) if (String(lines[i]).trim()) return String(lines[i]);
  return "";
}

export async function resumeRunningJob() {
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
