// The trainserve dashboard: jobs, a job's live charts, a submit form and an image drop
// (registered models are in registry.js).
// No build step: plain browser JavaScript over the REST API and its event stream.
"use strict";

const KEY_STORAGE = "trainserve.apiKey";
const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
const JOBS_REFRESH_MS = 2000;
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

// -- predictions --------------------------------------------------------------------------

function predictBox(container, jobId) {
  container.replaceChildren($("#predict-box").content.cloneNode(true));
  const input = $(".predict-file", container);
  const drop = $(".drop", container);
  const send = async (file) => {
    const form = new FormData();
    form.append("file", file);
    const query = jobId ? `?job_id=${jobId}` : "";
    try {
      const answer = await api("POST", `/predict${query}`, form);
      showPrediction(container, file, answer);
      showNotice("");
    } catch (error) {
      showNotice(`prediction: ${error.message}`);
    }
  };
  input.addEventListener("change", () => input.files[0] && send(input.files[0]));
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files[0]) send(event.dataTransfer.files[0]);
  });
}

function showPrediction(container, file, answer) {
  const box = $(".prediction", container);
  box.hidden = false;
  $("img", box).src = URL.createObjectURL(file);
  const by = answer.model === null ? "" : `${answer.model} v${answer.version}, `;
  $(".predicted-label", box).textContent =
    `${answer.label} (${percent(answer.probabilities[answer.label])}, ${by}job ${answer.job_id})`;
  const rows = Object.entries(answer.probabilities)
    .sort((a, b) => b[1] - a[1])
    .map(([label, p]) => {
      const row = document.createElement("tr");
      row.dataset.label = label;
      row.innerHTML = `<td></td><td class="num"></td><td class="meter"><div></div></td>`;
      row.cells[0].textContent = label;
      row.cells[1].textContent = percent(p);
      row.cells[2].firstChild.style.width = `${(100 * p).toFixed(1)}%`;
      return row;
    });
  $(".probabilities", box).replaceChildren(...rows);
}

// -- the jobs list ------------------------------------------------------------------------

function jobsView(view) {
  view.replaceChildren($("#jobs-view").content.cloneNode(true));
  predictBox($(".predict", view), null);
  $("#submit-form").addEventListener("submit", submitJob);
  const refresh = async () => {
    if (needsKey()) return askForKey();
    try {
      const page = await api("GET", "/jobs?limit=50");
      $("#jobs-total").textContent = `(${page.total})`;
      $("#jobs-table tbody").replaceChildren(...page.items.map(jobRow));
    } catch (error) {
      showNotice(`jobs: ${error.message}`);
    }
  };
  refresh();
  const timer = setInterval(refresh, JOBS_REFRESH_MS);
  state.leave.push(() => clearInterval(timer));
}

function jobRow(job) {
  const row = document.createElement("tr");
  row.dataset.jobId = job.id;
  row.innerHTML =
    `<td><a></a></td><td><span class="status"></span></td>` +
    `<td><div class="bar"><div></div></div></td><td class="num"></td><td></td><td></td>`;
  $("a", row).href = `#/jobs/${job.id}`;
  $("a", row).textContent = job.id;
  statusBadge($(".status", row), job.status);
  $(".bar div", row).style.width = `${(100 * progressOf(job)).toFixed(1)}%`;
  row.cells[3].textContent = percent(job.test_accuracy);
  row.cells[4].textContent = job.device || "–";
  row.cells[5].textContent = new Date(job.created_at).toLocaleString();
  row.title = job.error || job.waiting_reason || "";
  return row;
}

async function submitJob(event) {
  event.preventDefault();
  const body = {};
  for (const [name, value] of new FormData(event.target)) {
    if (value === "") continue;
    body[name] = ["recipe", "optimizer"].includes(name) ? value : Number(value);
  }
  try {
    const job = await api("POST", "/jobs", body);
    showNotice("");
    location.hash = `#/jobs/${job.id}`;
  } catch (error) {
    showNotice(`submit: ${error.message}`);
  }
}

// -- one job --------------------------------------------------------------------------------

function jobView(view, jobId) {
  view.replaceChildren($("#job-view").content.cloneNode(true));
  $("#job-id").textContent = jobId;
  predictBox($(".predict", view), jobId);
  const charts = {
    loss: chart($("#loss-chart"), "line", [{ label: "training loss", data: [], pointRadius: 2 }], {
      parsing: false,
      scales: { x: { type: "linear", title: { display: true, text: "epoch" } } },
    }),
    accuracy: chart($("#accuracy-chart"), "line", [
      { label: "test accuracy %", data: [] },
      { label: "validation accuracy %", data: [], hidden: true },
    ], {
      scales: { y: { min: 0, max: 100 } },
    }),
    classes: chart($("#class-chart"), "bar", [{ label: "test accuracy %", data: [] }], {
      scales: { y: { min: 0, max: 100 } },
    }),
  };
  const job = { id: jobId, stepsPerEpoch: null, epochs: null, classes: null, loss: [], epochResults: [] };
  state.leave.push(() => Object.values(charts).forEach((c) => c.destroy()));
  $("#cancel-job").addEventListener("click", async () => {
    try {
      await api("POST", `/jobs/${jobId}/cancel`);
    } catch (error) {
      showNotice(`cancel: ${error.message}`);
    }
  });
  if (needsKey()) return askForKey();
  api("GET", `/jobs/${jobId}`)
    .then((found) => {
      job.epochs = found.config.epochs;
      job.stepsPerEpoch = found.progress.steps_per_epoch;
      job.found = found;
      showJob(found);
      state.leave.push(followEvents(jobId, (kind, data) => onEvent(job, charts, kind, data)));
    })
    .catch((error) => showNotice(error.message));
}

function showJob(found) {
  statusBadge($("#job-status"), found.status);
  $("#cancel-job").hidden = FINISHED.has(found.status);
  $("#job-progress").style.width = `${(100 * progressOf(found)).toFixed(1)}%`;
  showSummary(found);
}

function showSummary(found) {
  const config = found.config;
  $("#job-summary").textContent =
    `${config.epochs} epochs, batch ${config.batch_size}, ${config.optimizer} ` +
    `lr ${config.learning_rate}, on ${found.device || "a worker's device"}`;
}

function onEvent(job, charts, kind, data) {
  if (kind === "status") {
    statusBadge($("#job-status"), data.status);
    $("#cancel-job").hidden = FINISHED.has(data.status);
    if (data.error) {
      $("#job-error").hidden = false;
      $("#job-error").textContent = data.error;
    }
    if (data.status === "succeeded") {
      $("#job-progress").style.width = "100%";
      if (data.best_epoch) {
        $("#job-summary").textContent += ` · early stopping kept epoch ${data.best_epoch}`;
      }
      showClasses(charts.classes, data.per_class_accuracy);
      showConfusion(job.classes || Object.keys(data.per_class_accuracy), data.confusion_matrix);
    }
  } else if (kind === "started") {
    job.stepsPerEpoch = data.steps_per_epoch;
    job.classes = data.classes;
    showSummary(Object.assign({}, job.found, { device: data.device }));
  } else if (kind === "progress") {
    setProgress(job, data.epoch, data.step);
  } else if (kind === "loss") {
    job.loss = job.loss.filter((p) => p.epoch !== data.epoch || p.step !== data.step);
    job.loss.push(data);
    setProgress(job, data.epoch, data.step);
    drawLoss(job, charts.loss);
  } else if (kind === "epoch") {
    job.epochResults = job.epochResults.filter((e) => e.epoch !== data.epoch).concat([data]);
    drawAccuracy(job, charts.accuracy);
  } else if (kind === "rewound") {
    const after = (p) => p.epoch > data.epoch || (p.epoch === data.epoch && p.step > data.step);
    job.loss = job.loss.filter((p) => !after(p));
    job.epochResults = job.epochResults.filter((e) => e.epoch <= data.epoch);
    drawLoss(job, charts.loss);
    drawAccuracy(job, charts.accuracy);
  }
}

function setProgress(job, epoch, step) {
  if (!job.stepsPerEpoch || !job.epochs) return;
  const done = ((epoch - 1) * job.stepsPerEpoch + step) / (job.epochs * job.stepsPerEpoch);
  $("#job-progress").style.width = `${(100 * done).toFixed(1)}%`;
}

function drawLoss(job, lossChart) {
  const per = job.stepsPerEpoch || 1;
  lossChart.data.datasets[0].data = job.loss.map((p) => ({ x: p.epoch - 1 + p.step / per, y: p.loss }));
  lossChart.update();
}

function drawAccuracy(job, accuracyChart) {
  accuracyChart.data.labels = job.epochResults.map((e) => `epoch ${e.epoch}`);
  accuracyChart.data.datasets[0].data = job.epochResults.map((e) => 100 * e.test_accuracy);
  const validated = job.epochResults.some((e) => e.validation_accuracy != null);
  accuracyChart.data.datasets[1].hidden = !validated;
  accuracyChart.data.datasets[1].data = job.epochResults.map((e) =>
    e.validation_accuracy == null ? null : 100 * e.validation_accuracy);
  accuracyChart.update();
}

function showClasses(classChart, perClass) {
  classChart.data.labels = Object.keys(perClass);
  classChart.data.datasets[0].data = Object.values(perClass).map((a) => 100 * a);
  classChart.update();
}

function showConfusion(classes, matrix) {
  const table = $("#confusion");
  const most = Math.max(1, ...matrix.flat());
  const head = document.createElement("tr");
  head.append(document.createElement("th"));
  for (const name of classes) {
    const th = document.createElement("th");
    th.textContent = name;
    head.append(th);
  }
  const rows = matrix.map((counts, i) => {
    const row = document.createElement("tr");
    const th = document.createElement("th");
    th.textContent = classes[i];
    row.append(th);
    for (const count of counts) {
      const cell = document.createElement("td");
      cell.textContent = count;
      const shade = count / most;
      cell.style.background = `rgba(33, 102, 172, ${shade.toFixed(3)})`;
      cell.style.color = shade > 0.5 ? "white" : "inherit";
      row.append(cell);
    }
    return row;
  });
  table.replaceChildren(head, ...rows);
}

// -- routing ------------------------------------------------------------------------------

function route() {
  state.leave.forEach((stop) => stop());
  state.leave = [];
  const view = $("#view");
  const job = location.hash.match(/^#\/jobs\/(\d+)$/);
  const model = location.hash.match(/^#\/models\/([a-z0-9][a-z0-9._-]*)$/);
  if (job) jobView(view, Number(job[1]));
  else if (model) modelView(view, model[1]); // registry.js
  else if (location.hash === "#/models") modelsView(view);
  else jobsView(view);
}

document.addEventListener("DOMContentLoaded", () => {
  $("#api-key").value = apiKey();
  $("#key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    localStorage.setItem(KEY_STORAGE, $("#api-key").value.trim());
    showNotice("");
    route();
  });
  window.addEventListener("hashchange", route);
  route();
});
