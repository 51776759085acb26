// The page of a served Hakim judge. Every value that comes from the judge or the user is set with
// textContent, never as HTML: a passage or a reasoning holding <script> shows as those characters.
"use strict";

const $ = (id) => document.getElementById(id);
const LABEL_WORDS = { 1: "1: holds", 0: "0: does not hold" };
let downloadUrl = null;

function headers() {
  const key = $("api-key").value;
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
}

async function call(path, options) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = (body.error && body.error.message) || response.statusText;
    const wait = response.headers.get("Retry-After");
    throw new Error(`HTTP ${response.status}: ${message}${wait ? ` (retry in ${wait} s)` : ""}`);
  }
  return body;
}

function verdictText(verdict) {
  if (verdict.error) return `not judged: ${verdict.error}`;
  if (verdict.label === null) return `unparsed: ${verdict.unparsed}`;
  return LABEL_WORDS[verdict.label];
}

function showVerdict(verdict, item, seconds) {
  $("verdict").textContent = verdictText(verdict);
  const p = verdict.probability;
  $("probability").textContent = p === null ? "not given" : p.toFixed(4);
  $("probability-bar").style.width = p === null ? "0" : `${(100 * p).toFixed(1)}%`;
  $("threshold").textContent = verdict.threshold.toFixed(2);
  $("threshold-mark").style.left = `${(100 * verdict.threshold).toFixed(1)}%`;
  $("latency").textContent = `${Math.round(seconds * 1000)} ms`;
  $("reasoning-section").hidden = !verdict.reasoning;
  $("reasoning").textContent = verdict.reasoning || "";
  const read = verdict.passage_read;
  $("passage-read").textContent = read === null ? "(not read: the claim does not fit)" : read;
  $("passage-note").textContent = isChunked(verdict) ? `(${chunkText(verdict)}: the chunk that decided)`
    : verdict.truncated ? "(cut to fit the judge's length)"
    : read !== null && read !== item.passage ? "(only the sentences closest to the claim)" : "(whole)";
  $("result").hidden = false;
}

// A chunked judge reads the passage in chunks; the one whose verdict decided is numbered from 1 here.
function isChunked(verdict) {
  return verdict.chunk !== null && verdict.chunk !== undefined;
}

function chunkText(verdict) {
  if (!isChunked(verdict)) return "";
  const sentence = verdict.claim_sentence === null ? "" : `, for claim sentence ${verdict.claim_sentence + 1}`;
  const cut = verdict.truncated ? ", a sentence too long for a chunk cut" : "";
  return `chunk ${verdict.chunk + 1} of ${verdict.chunk_count}${sentence}${cut}`;
}

async function judgeOne(event) {
  event.preventDefault();
  showError("");
  const item = { passage: $("passage").value, claim: $("claim").value, task: $("task").value,
                 language: $("language").value };
  const started = performance.now();
  try {
    const body = await call("/v1/judge", {
      method: "POST", headers: { "Content-Type": "application/json", ...headers() },
      body: JSON.stringify({ items: [item], mode: $("mode").value || null, return_passage: true }),
    });
    showVerdict(body.verdicts[0], item, (performance.now() - started) / 1000);
  } catch (error) {
    showError(error.message);
  }
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
}

async function judgeFile(event) {
  event.preventDefault();
  showError("");
  const form = new FormData();
  form.append("file", $("file").files[0]);
  form.append("passage_column", $("passage-column").value);
  form.append("claim_column", $("claim-column").value);
  form.append("task_column", $("task-column").value);
  form.append("task", $("task").value);
  form.append("mode", $("mode").value);
  $("file-button").disabled = true;
  try {
    const body = await call("/v1/judge/file", { method: "POST", headers: headers(), body: form });
    const tbody = $("results").tBodies[0];
    tbody.replaceChildren();
    for (const row of body.rows) {
      const tr = tbody.insertRow();
      cell(tr, row.row);
      cell(tr, row.task);
      cell(tr, row.claim, "claim");
      cell(tr, row.label === null ? "" : String(row.label));
      cell(tr, row.probability === null ? "" : row.probability.toFixed(4));
      cell(tr, chunkText(row));
      cell(tr, row.error ? `not judged: ${row.error}` : row.unparsed ? `unparsed: ${row.unparsed}` : "");
    }
    const lines = body.rows.map((row) => JSON.stringify(row)).join("\n") + "\n";
    if (downloadUrl) URL.revokeObjectURL(downloadUrl);
    downloadUrl = URL.createObjectURL(new Blob([lines], { type: "application/x-ndjson" }));
    $("download").href = downloadUrl;
    $("file-summary").textContent = `${body.rows.length} rows judged by ${body.model} (${body.mode})`;
    $("file-result").hidden = false;
  } catch (error) {
    showError(error.message);
  } finally {
    $("file-button").disabled = false;
  }
}

async function waitUntilReady() {
  for (;;) {
    try {
      const response = await fetch("/readyz");
      const body = await response.json();
      if (response.ok) return body;
      $("status").textContent = body.status === "failed" ? "the judge failed to load (see the server's log)" : "loading the judge…";
      if (body.status === "failed") return null;
    } catch (error) {
      $("status").textContent = "the server does not answer";
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function start() {
  $("judge-form").addEventListener("submit", judgeOne);
  $("file-form").addEventListener("submit", judgeFile);
  const ready = await waitUntilReady();
  if (!ready) return;
  $("status").textContent = `${ready.model}, ${ready.default_mode} mode`;
  $("key-section").hidden = !ready.auth_required;
  for (const mode of ready.modes) {
    const option = new Option(mode, mode, mode === ready.default_mode, mode === ready.default_mode);
    $("mode").add(option);
  }
  document.body.dataset.ready = "true";
}

start();
