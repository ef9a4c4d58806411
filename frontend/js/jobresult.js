// Section 3: what a finished, cancelled or failed run says — in words, with its table shown below.
import { $, el, fmtSeconds, plural } from "./dom.js";
import { readable } from "./status.js";
import { state } from "./store.js";
import { refreshFiles, showTable } from "./table.js";
import { collectOptions, renderProblems, scheduleValidate, updateExtractButton } from "./validate.js";
import { loadWeights } from "./weights.js";

export function finishJob(st) {
  const job = state.job;
  $("cancel-btn").hidden = true;
  const box = $("job-result");
  box.replaceChildren();
  box.hidden = false;
  box.dataset.state = st.state;
  const summary = st.summary || {};
  const output = st.output || summary.output || (job && job.output) || "";
  if (st.state === "done") doneText(box, st, summary, output, job);
  else if (st.state === "cancelled" || st.interrupted) stoppedText(box, st, output);
  else {
    const reason = st.error || summary.error || lastLogLine(st.log) || "The extraction failed.";
    box.append(el("p", {}, el("strong", { text: "Extraction failed. " }), readable(reason)));
    if (Array.isArray(st.problems) && st.problems.length) {
      state.validation.valid = false;
      state.validation.problems = st.problems;
      renderProblems();
    }
  }
  errorsList(box, st, summary);
  if (job) {
    job.state = st.state;
    job.failedWith = st.state === "failed" ? JSON.stringify(collectOptions()) : "";
    if (output && st.state === "done") {
      state.lastJob = { options: job.options, output };
      showTable(output); // the run's table, shown at once
    } else if (output && st.state !== "failed") {
      refreshFiles(output);
    }
  }
  loadWeights(); // a first run exported (or downloaded) its weights: the badges say so now
  state.validation.ready = false; // the run changed the workspace (its table now exists): ask again
  updateExtractButton();
  scheduleValidate();
}

function doneText(box, st, summary, output, job) {
  const ok = summary.ok ?? st.done;
  const secs = summary.seconds;
  box.append(el("p", {}, el("strong", { text: "Extraction finished. " }),
    `${plural(ok, "image")}${Number.isFinite(Number(secs)) && secs !== null ? ` in ${fmtSeconds(secs)}` : ""}`,
    summary.resumed ? ` (resumed ${summary.resumed} from an earlier run)` : "", ". Saved to ", el("code", { text: output })));
  const maps = saliencyLogLine([...((job && job.logLines) || []), ...(Array.isArray(st.log) ? st.log : [])]);
  if (maps) {
    box.append(el("p", { class: "small" }, `${plural(maps.count, "saliency map")} (PNG) written under `,
      el("code", { text: maps.folder }), ". Pick a row of the table below to see an image’s maps."));
  }
  if (summary.master && typeof summary.master === "object") masterText(box, summary.master);
  accountingText(box, summary);
}

/** What the run did not use (listed in the skipped file) and what a resume found changed: never silent. */
function accountingText(box, summary) {
  const parts = [];
  if (summary.skipped_files) {
    parts.push(`${plural(summary.skipped_files, "file or folder", "files or folders")} of the input not used (images at another depth, other files, broken links, unreadable folders), listed in `);
  }
  const p = el("p", { class: "small skipped-summary" }, ...parts);
  if (summary.skipped_files) p.append(el("code", { text: summary.skipped_path || "" }), ". ");
  if (summary.ignored) p.append(`${plural(summary.ignored, "hidden or system file")} ignored. `);
  if (summary.changed || summary.vanished) {
    p.append(`Since the interrupted run, ${plural(summary.changed || 0, "image")} changed (done again) and ${summary.vanished || 0} disappeared (rows dropped).`);
  }
  if (p.childNodes.length) box.append(p);
}

/** The master table's join, said in words: rows, the images without a date (named), the rest counted. */
export function masterText(box, m) {
  const p = el("p", { class: "small master-summary" });
  const parts = [`The master table has ${plural(m.rows ?? 0, "row")}.`];
  const nImages = m.unmatched_images_total ?? (m.unmatched_images || []).length;
  if (!nImages && !m.unmatched_dates && !m.duplicates && !m.unparseable) parts.push("Every image matched a date.");
  if (m.unmatched_dates) parts.push(`${plural(m.unmatched_dates, "date")} of the CSV ${m.unmatched_dates === 1 ? "has" : "have"} no image.`);
  if (m.duplicates) parts.push(`${plural(m.duplicates, "duplicate")} (file names or dates) ${m.duplicates === 1 ? "was" : "were"} left out.`);
  if (m.unparseable) parts.push(`${plural(m.unparseable, "date")} could not be read.`);
  p.append(parts.join(" "));
  box.append(p);
  if (nImages) {
    const names = m.unmatched_images || [];
    const det = el("details", { class: "failed-list" });
    det.append(el("summary", { text: `${plural(nImages, "image")} without a date in the CSV, left out of the master table` }));
    det.append(el("p", { class: "small mono", text: names.join(", ") + (nImages > names.length ? ` … and ${nImages - names.length} more` : "") }));
    box.append(det);
  }
  if (m.unmatched_path) {
    const link = el("a", { href: "#result-table", class: "linklike", text: "Show the list of unmatched items" });
    link.addEventListener("click", (ev) => {
      ev.preventDefault();
      showTable(m.unmatched_path);
    });
    box.append(el("p", { class: "small" }, link, " (", el("code", { text: m.unmatched_path }), ")"));
  }
}

function stoppedText(box, st, output) {
  const what = st.state === "cancelled" ? "Extraction cancelled. " : "Extraction stopped. ";
  const kept = st.resumable === false ? "" : " The rows already extracted are kept; pressing “Extract data” with the same options resumes the run.";
  box.append(el("p", {}, el("strong", { text: what }), `${st.done || 0} of ${plural(st.total || 0, "image")} processed.${kept}`));
  if (st.error) box.append(el("p", { class: "small", text: readable(st.error) }));
  if (output) box.append(el("p", { class: "small muted" }, "Partial table: ", el("code", { text: `${output}.partial` })));
}

function errorsList(box, st, summary) {
  const errors = st.errors || summary.errors || [];
  if (!errors.length) return;
  const det = el("details", { class: "failed-list" });
  det.append(el("summary", { text: `${plural(errors.length, "image")} could not be read` }));
  const ul = el("ul");
  for (const e of errors.slice(0, 200)) ul.append(el("li", {}, el("code", { text: e.path || "" }), ` — ${readable(e.reason || "")}`));
  det.append(ul);
  if (summary.errors_path) det.append(el("p", { class: "small muted" }, "Full list: ", el("code", { text: summary.errors_path })));
  box.append(det);
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
