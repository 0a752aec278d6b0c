// One job's page: its live charts from the event stream, the confusion matrix with the gallery of
// its mistakes (gallery.js), Cancel or Retry, and the image drop for its model.
"use strict";

function jobView(view, jobId) {
  view.replaceChildren($("#job-view").content.cloneNode(true));
  $("#job-id").textContent = jobId;
  const charts = {
    loss: chart($("#loss-chart"), "line", [{ label: "training loss", data: [], pointRadius: 2 }], {
      parsing: false,
      scales: { x: { type: "linear", title: { display: true, text: "epoch" } } },
    }),
    accuracy: chart($("#accuracy-chart"), "line", [{ label: "test accuracy %", data: [] }], {
      scales: { y: { min: 0, max: 100 } },
    }),
    classes: chart($("#class-chart"), "bar", [{ label: "test accuracy %", data: [] }], {
      scales: { y: { min: 0, max: 100 } },
    }),
  };
  const job = { id: jobId, stepsPerEpoch: null, epochs: null, classes: null, loss: [], epochResults: [] };
  state.leave.push(() => Object.values(charts).forEach((c) => c.destroy()), forgetImages);
  $("#cancel-job").addEventListener("click", () => act("cancel", `/jobs/${jobId}/cancel`));
  $("#retry-job").addEventListener("click", async () => {
    const retry = await act("retry", `/jobs/${jobId}/retry`);
    if (retry) location.hash = `#/jobs/${retry.id}`;
  });
  $("#gallery-all").addEventListener("click", () => showMistakes(job.found, null, null));
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

async function act(what, path) {
  try {
    return await api("POST", path);
  } catch (error) {
    showNotice(`${what}: ${error.message}`);
    return null;
  }
}

function showJob(found) {
  showStatus(found.status);
  $("#job-progress").style.width = `${(100 * progressOf(found)).toFixed(1)}%`;
  $("#job-name").textContent = found.name || "";
  const tags = Object.entries(found.tags || {}).map(([key, value]) => `${key}: ${value}`);
  $("#job-tags").textContent = tags.join(" · ");
  $("#job-notes").textContent = found.notes || "";
  $("#job-notes").hidden = !found.notes;
  showError(found.error);
  showSummary(found);
}

// The actions and panels that fit the status: Cancel while it may still run, Retry once it
// failed or was cancelled, and the image drop only with a model to answer.
function showStatus(status) {
  statusBadge($("#job-status"), status);
  $("#cancel-job").hidden = FINISHED.has(status);
  $("#retry-job").hidden = !["failed", "cancelled"].includes(status);
  const predictPanel = $("#job-predict");
  if (status === "succeeded" && predictPanel.hidden) {
    predictPanel.hidden = false;
    predictBox($(".predict", predictPanel), Number($("#job-id").textContent));
  }
}

function showError(error) {
  $("#job-error").hidden = !error;
  $("#job-error").textContent = error || "";
}

function showSummary(found) {
  const config = found.config;
  $("#job-summary").textContent =
    `${config.model}, ${config.epochs} epochs, batch ${config.batch_size}, ${config.optimizer} ` +
    `lr ${config.learning_rate}, on ${found.device || "a worker's device"}`;
}

function onEvent(job, charts, kind, data) {
  if (kind === "status") {
    showStatus(data.status);
    if (data.error) showError(data.error);
    if (data.status === "succeeded") {
      $("#job-progress").style.width = "100%";
      if (data.best_epoch) {
        $("#job-summary").textContent += ` · early stopping kept epoch ${data.best_epoch}`;
      }
      const classes = job.classes || Object.keys(data.per_class_accuracy);
      showClasses(charts.classes, data.per_class_accuracy);
      showConfusion(classes, data.confusion_matrix, (t, p) => showMistakes(job.found, t, p));
      showMistakes(job.found, null, null); // gallery.js
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

// Validation accuracy joins the chart only for a job that holds out a validation set: a
// hidden series would still show, struck through, in the legend.
function drawAccuracy(job, accuracyChart) {
  const datasets = accuracyChart.data.datasets;
  accuracyChart.data.labels = job.epochResults.map((e) => `epoch ${e.epoch}`);
  datasets[0].data = job.epochResults.map((e) => 100 * e.test_accuracy);
  if (job.epochResults.some((e) => e.validation_accuracy != null)) {
    if (datasets.length === 1) datasets.push({ label: "validation accuracy %", data: [] });
    datasets[1].data = job.epochResults.map((e) =>
      e.validation_accuracy == null ? null : 100 * e.validation_accuracy);
  }
  accuracyChart.update();
}

function showClasses(classChart, perClass) {
  classChart.data.labels = Object.keys(perClass);
  classChart.data.datasets[0].data = Object.values(perClass).map((a) => 100 * a);
  classChart.update();
}

// Rows are true classes, columns predicted ones; a mistake's cell opens its images.
function showConfusion(classes, matrix, onMistakes) {
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
    counts.forEach((count, j) => {
      const cell = document.createElement("td");
      cell.textContent = count;
      const shade = count / most;
      cell.style.background = `rgba(33, 102, 172, ${shade.toFixed(3)})`;
      cell.style.color = shade > 0.5 ? "white" : "inherit";
      if (i !== j && count > 0) {
        cell.classList.add("mistakes");
        cell.title = `${count} ${classes[i]} images taken for ${classes[j]}: show them`;
        cell.addEventListener("click", () => onMistakes(classes[i], classes[j]));
      }
      row.append(cell);
    });
    return row;
  });
  table.replaceChildren(head, ...rows);
}
