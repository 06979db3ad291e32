// The demo page: start requests, abort them, follow the server's log.
"use strict";

const inflight = new Map();
let nextLocal = 1;

function show(element, visible) {
  element.hidden = !visible;
}

function refreshIdle() {
  show(document.getElementById("idle"), inflight.size === 0);
}

function start(url, label, abortAfter) {
  const id = nextLocal++;
  const controller = new AbortController();
  const item = document.createElement("li");
  const text = document.createElement("span");
  const abort = document.createElement("button");
  text.textContent = `${label} (browser #${id}): waiting…`;
  abort.type = "button";
  abort.textContent = "Abort";
  abort.addEventListener("click", () => controller.abort());
  item.append(text, abort);
  document.getElementById("inflight").append(item);
  inflight.set(id, controller);
  refreshIdle();

  const started = performance.now();
  const timer = abortAfter ? setTimeout(() => controller.abort(), abortAfter) : null;
  fetch(url, { signal: controller.signal, cache: "no-store" })
    .then((response) => response.json())
    .then((body) => {
      const ms = Math.round(performance.now() - started);
      text.textContent = `${label} (browser #${id}): answered after ${ms} ms, server request #${body.request}`;
    })
    .catch((error) => {
      const ms = Math.round(performance.now() - started);
      const what = error.name === "AbortError" ? "aborted" : `failed: ${error}`;
      text.textContent = `${label} (browser #${id}): ${what} after ${ms} ms`;
    })
    .finally(() => {
      if (timer) clearTimeout(timer);
      abort.remove();
      inflight.delete(id);
      refreshIdle();
      setTimeout(() => item.remove(), 8000);
    });
}

function addLogRow(event) {
  const row = document.createElement("tr");
  row.className = event.kind === "499" ? "status-499" : event.kind.replace(" ", "-");
  const time = new Date(event.at * 1000).toLocaleTimeString();
  const cells = [
    time,
    event.request === null ? "" : `#${event.request}`,
    event.route,
    event.kind,
    event.detail,
    event.elapsed_ms === null ? "" : event.elapsed_ms.toFixed(1),
  ];
  cells.forEach((value, index) => {
    const cell = document.createElement("td");
    cell.textContent = value;
    if (index === 5) cell.className = "ms";
    row.append(cell);
  });
  const log = document.getElementById("log");
  log.prepend(row);
  while (log.rows.length > 200) log.deleteRow(-1);
}

async function followLog() {
  const status = document.getElementById("log-status");
  let after = 0;
  let wait = 0; // the first look answers at once, later ones long-poll
  for (;;) {
    try {
      const response = await fetch(`/api/events?after=${after}&wait=${wait}`, { cache: "no-store" });
      wait = 25;
      const body = await response.json();
      if (body.last < after) {
        after = 0; // the server restarted: start over
        continue;
      }
      body.events.forEach(addLogRow);
      after = body.last;
      status.textContent = "Live (long poll). Newest first.";
    } catch (error) {
      status.textContent = `Server unreachable (${error}); retrying…`;
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }
}

document.querySelectorAll("button[data-url]").forEach((button) => {
  button.addEventListener("click", () => {
    const abortAfter = Number(button.dataset.abortAfter || 0);
    start(button.dataset.url, button.dataset.label, abortAfter);
  });
});
document.getElementById("abort-all").addEventListener("click", () => {
  inflight.forEach((controller) => controller.abort());
});
refreshIdle();
followLog();
