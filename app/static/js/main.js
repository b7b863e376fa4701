// Progressive enhancement of the server-rendered page: look up without a page load, keep the URL
// (?q=) and history in step, tick the local clocks, copy the raw JSON. Without this script the
// form submits as a plain GET and the server renders the same result.

import { startClocks } from "./clock.js";
import { errorView, showDocument, showError } from "./render.js";

const form = document.getElementById("lookup-form");
const input = document.getElementById("q");
const status = document.getElementById("status");
const results = document.getElementById("results");
const copyButton = document.getElementById("copy-json");
const copyStatus = document.getElementById("copy-status");

let current = null; // the AbortController of the lookup in flight

function pageUrl(query) {
  const url = new URL(window.location.href);
  url.search = "";
  const lang = new URL(window.location.href).searchParams.get("lang");
  if (query !== null) url.searchParams.set("q", query);
  if (lang) url.searchParams.set("lang", lang);
  return url;
}

function apiUrl(query) {
  const lang = new URL(window.location.href).searchParams.get("lang");
  const path = query === "" ? "/api/v1/lookup/me" : `/api/v1/lookup/${encodeURIComponent(query)}`;
  return lang ? `${path}?lang=${encodeURIComponent(lang)}` : path;
}

function setTitle(text) {
  document.title = text ? `${text} · Easy GeoIP` : "Easy GeoIP";
}

function clearResults() {
  document.getElementById("error").hidden = true;
  document.getElementById("answer").hidden = true;
  status.textContent = "";
  setTitle(null);
}

async function fetchDocument(query, signal) {
  // A path segment made only of dots would be folded away by URL parsing ("/lookup/.." is
  // "/api/v1/"), and it is never a valid target anyway: answer it here.
  if (/^\.+$/.test(query)) return { ok: false, code: "INVALID_TARGET" };
  let response;
  try {
    response = await fetch(apiUrl(query), { headers: { Accept: "application/json" }, signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    return { ok: false, code: "NETWORK" };
  }
  let body = null;
  try {
    body = await response.json();
  } catch (error) {
    body = null;
  }
  if (response.ok && body && Array.isArray(body.results)) return { ok: true, doc: body };
  const code = body && body.error && typeof body.error.code === "string" ? body.error.code : "INTERNAL_ERROR";
  return { ok: false, code };
}

async function lookUp(query) {
  if (current) current.abort();
  const controller = new AbortController();
  current = controller;
  const askedForMe = query === "";
  status.textContent = askedForMe ? "Looking up your address…" : "Looking up…";
  results.setAttribute("aria-busy", "true");
  let outcome;
  try {
    outcome = await fetchDocument(query, controller.signal);
  } catch (error) {
    return; // superseded by a newer lookup
  } finally {
    if (current === controller) results.setAttribute("aria-busy", "false");
  }
  if (current !== controller) return;
  current = null;
  if (outcome.ok) {
    const summary = showDocument(outcome.doc, askedForMe);
    startClocks(document.getElementById("cards"));
    const count = outcome.doc.results.length;
    status.textContent = `Found ${count} result${count === 1 ? "" : "s"}.`;
    setTitle(summary.heading);
  } else {
    const view = errorView(outcome.code, askedForMe);
    showError(view);
    status.textContent = "";
    setTitle(view.title);
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const query = input.value.trim();
  const url = pageUrl(query);
  if (url.href !== window.location.href) history.pushState({ q: query }, "", url);
  lookUp(query);
});

window.addEventListener("popstate", () => {
  const query = new URL(window.location.href).searchParams.get("q");
  input.value = query ?? "";
  if (query === null) {
    if (current) current.abort();
    clearResults();
  } else {
    lookUp(query.trim());
  }
});

copyButton.hidden = false;
copyButton.addEventListener("click", async () => {
  const text = document.getElementById("raw-json").textContent;
  try {
    await navigator.clipboard.writeText(text);
    copyStatus.textContent = "Copied to the clipboard.";
  } catch (error) {
    // No clipboard access (plain HTTP on another host, or denied): select the text instead.
    const range = document.createRange();
    range.selectNodeContents(document.getElementById("raw-json"));
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    copyStatus.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
  }
});

startClocks(document.getElementById("cards"));
