// Native dialogs of the desktop window (pywebview js_api), absent in a browser.
import { $ } from "./dom.js";
import { showError } from "./status.js";
import { state } from "./store.js";

export function nativeApi() {
  return window.pywebview && window.pywebview.api && typeof window.pywebview.api.choose_folder === "function"
    ? window.pywebview.api
    : null;
}

export function enableNative() {
  if (state.native || !nativeApi()) return;
  state.native = true;
  document.body.classList.add("native");
  for (const n of document.querySelectorAll(".native-only")) n.hidden = false;
  for (const n of document.querySelectorAll(".browser-only")) n.hidden = true;
}

export async function browse(kind, inputId) {
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

