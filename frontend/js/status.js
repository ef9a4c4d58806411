// The error banner and the connection indicator in the header.
import { $ } from "./dom.js";

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

export function showError(title, err) {
  const msg = err instanceof Error ? err.message : readable(err);
  $("banner-title").textContent = title;
  $("banner-text").textContent = readable(msg);
  $("banner").hidden = false;
}

export function hideError() {
  $("banner").hidden = true;
}

export function setConnection(mode, text) {
  const conn = $("conn");
  if (mode === "up" && !text && conn.dataset.state === "up") return;
  conn.dataset.state = mode;
  if (text) $("conn-text").textContent = text;
  else if (mode === "up") $("conn-text").textContent = "Connected";
}
