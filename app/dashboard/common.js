// The dashboard's shared parts: the API over fetch, a job's event stream, and small helpers
// that every page uses. No build step: plain browser scripts sharing one global scope.
"use strict";

const KEY_STORAGE = "trainserve.apiKey";
const PRODUCTION = "production"; // the alias /predict serves by default
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
const RECONNECT_MS = 2000;

const state = { leave: [] }; // what to stop when the view changes

// -- the API ------------------------------------------------------------------------------

function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

function needsKey() {
  return document.body.dataset.auth === "required" && !apiKey();
}

function headers(extra) {
  const key = apiKey();
  return Object.assign(key ? { Authorization: `Bearer ${key}` } : {}, extra || {});
}

class ApiError extends Error {}

async function api(method, path, body) {
  const init = { method, headers: headers() };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    if (response.status === 401) askForKey();
    throw new ApiError(answer.detail || `${response.status} ${response.statusText}`);
  }
  return answer;
}

// An image the API serves, as an address an <img> can show: fetched with the key, which an
// <img> cannot send. The caller revokes it (URL.revokeObjectURL) when the image goes.
async function apiImage(path) {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) {
    const answer = await response.json().catch(() => ({}));
    throw new ApiError(answer.detail || `${response.status} ${response.statusText}`);
  }
  return URL.createObjectURL(await response.blob());
}

// Follows a job's Server-Sent Events over fetch (EventSource cannot send an API key),
// resuming after the last event id whenever the stream closes, until the job ends.
function followEvents(jobId, onEvent) {
  const controller = new AbortController();
  let lastId = 0;
  let ended = false;

  function dispatch(block) {
    let id = null, kind = "message", data = "";
    for (const line of block.split("\n")) {
      if (line.startsWith("id:")) id = line.slice(3).trim();
      else if (line.startsWith("event:")) kind = line.slice(6).trim();
      else if (line.startsWith("data:")) data += line.slice(5).replace(/^ /, "");
    }
    if (id === null) return; // a comment or retry hint
    lastId = Number(id);
    const payload = JSON.parse(data);
    onEvent(kind, payload);
    if (kind === "status" && FINISHED.has(payload.status)) ended = true;
  }

  async function connect() {
    while (!ended && !controller.signal.aborted) {
      try {
        const response = await fetch(`/jobs/${jobId}/events`, {
          headers: headers({ "Last-Event-ID": String(lastId), Accept: "text/event-stream" }),
          signal: controller.signal,
        });
        if (!response.ok) {
          const answer = await response.json().catch(() => ({}));
          if (response.status === 401) askForKey();
          showNotice(answer.detail || `events: ${response.status}`);
          return;
        }
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer = (buffer + value).replace(/\r\n?/g, "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            dispatch(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch (error) {
        if (controller.signal.aborted) return;
      }
      if (!ended) await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
    }
  }

  connect();
  return () => controller.abort();
}

// -- small helpers ------------------------------------------------------------------------

function $(selector, root) {
  return (root || document).querySelector(selector);
}

function percent(fraction) {
  return fraction === null || fraction === undefined ? "–" : `${(100 * fraction).toFixed(2)}%`;
}

function showNotice(message) {
  const notice = $("#notice");
  notice.textContent = message;
  notice.hidden = !message;
}

function askForKey() {
  showNotice("This server needs an API key: enter it above.");
  $("#api-key").focus();
}

function statusBadge(element, status) {
  element.textContent = status;
  element.className = `status ${status}`;
}

function progressOf(job) {
  const p = job.progress;
  if (!p.steps_per_epoch || p.epoch === 0) return job.status === "succeeded" ? 1 : 0;
  return ((p.epoch - 1) * p.steps_per_epoch + p.step) / (p.epochs * p.steps_per_epoch);
}

function chart(canvas, type, datasets, options) {
  return new Chart(canvas, {
    type,
    data: { labels: [], datasets },
    options: Object.assign({ animation: false, responsive: true, maintainAspectRatio: false }, options),
  });
}

