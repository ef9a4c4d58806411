// Section 3: the extraction job — start, poll, progress, log, cancel, result.
import { $, fmtDuration } from "./dom.js";
import { BUSY, rpc } from "./rpc.js";
import { hideError, showError } from "./status.js";
import { finishJob } from "./jobresult.js";
import { showStartRefusal } from "./readiness.js";
import { backendLost } from "./reconnect.js";
import { TERMINAL, state } from "./store.js";
import { collectOptions, renderProblems, updateExtractButton } from "./validate.js";

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
    if (showStartRefusal(err)) {
      renderProblems();
    } else if (err.data && Array.isArray(err.data.problems)) {
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
  $("progress-block").focus(); // the focus follows the run (it stays on the page, not on <body>)
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
    if (state.job.misses >= 3 && !(err.code !== null && err.code !== undefined)) {
      backendLost(jobId); // says what happened and reconnects when the backend answers again
      return;
    }
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
  state.job.lastDone = st.done;
  state.job.lastTotal = st.total;
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
  const running = !TERMINAL.has(st.state);
  // before the first image (preparing the model: export to ONNX on first use) there is no image count yet
  const preparing = running && st.state !== "queued" && !done && !/extract|writ/i.test(String(st.stage || ""));
  let pct = total > 0 ? Math.min(100, (done / total) * 100) : 0;
  if (st.state === "done") pct = 100;
  const rounded = Math.floor(pct);
  const bar = $("progress");
  bar.classList.toggle("indeterminate", preparing);
  $("progress-bar").style.width = preparing ? "" : `${pct}%`;
  if (preparing) {
    bar.removeAttribute("aria-valuenow");
    bar.setAttribute("aria-valuetext", `${stageLabel(st.stage, st.state)}`);
  } else {
    bar.setAttribute("aria-valuenow", String(rounded));
    bar.setAttribute("aria-valuetext", `${rounded} percent, ${done} of ${total} images`);
  }
  bar.dataset.state = st.state || "running";
  const elapsed = Number(st.elapsed_s);
  $("progress-pct").textContent = preparing ? (Number.isFinite(elapsed) ? fmtDuration(elapsed) : "") : `${rounded} %`;
  const stage = stageLabel(st.stage, st.state);
  $("progress-stage").textContent = st.message && running ? `${stage} — ${st.message}` : stage;
  const parts = [];
  if (preparing) parts.push("Preparing the model before the first image (the first use of a weight set exports it to ONNX)");
  if (total) parts.push(preparing ? `${total} images found` : `${done} / ${total} images`);
  const ips = Number(st.images_per_s);
  if (Number.isFinite(ips) && ips > 0) parts.push(`${ips.toFixed(ips >= 10 ? 0 : 1)} images/s`);
  if (running && total && done && Number.isFinite(Number(st.eta_s)) && st.eta_s !== null) parts.push(`ETA ${fmtDuration(st.eta_s)}`);
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
