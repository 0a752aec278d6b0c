// Several jobs side by side (GET /jobs/compare): their results, overlaid loss and accuracy
// curves on one axis in epochs, per-class accuracy with the best job marked, and the config
// fields that differ (those that do not, folded away).
"use strict";

// Distinct colours for up to the ten jobs a comparison takes.
const JOB_COLOURS = ["#2166ac", "#d6604d", "#1b9e77", "#7570b3", "#e6ab02", "#66a61e",
  "#a6761d", "#e7298a", "#666666", "#17becf"];

function compareView(view, jobIds) {
  view.replaceChildren($("#compare-view").content.cloneNode(true));
  $("#compare-ids").textContent = jobIds.join(", ");
  const axis = { type: "linear", title: { display: true, text: "epoch" } };
  const charts = {
    loss: chart($("#compare-loss"), "line", [], { parsing: false, scales: { x: axis } }),
    accuracy: chart($("#compare-accuracy"), "line", [], {
      parsing: false, scales: { x: axis, y: { min: 0, max: 100 } },
    }),
  };
  state.leave.push(() => Object.values(charts).forEach((c) => c.destroy()));
  if (needsKey()) return askForKey();
  api("GET", `/jobs/compare?ids=${jobIds.join(",")}`)
    .then((comparison) => showComparison(comparison, charts))
    .catch((error) => showNotice(`compare: ${error.message}`));
}

function jobLabel(job) {
  return job.name ? `${job.id} ${job.name}` : `job ${job.id}`;
}

function showComparison(comparison, charts) {
  const labels = comparison.jobs.map(jobLabel);
  const line = (points, i, scale) => ({
    label: labels[i],
    data: points.map((p) => ({ x: p.x, y: scale * p.y })),
    borderColor: JOB_COLOURS[i],
    backgroundColor: JOB_COLOURS[i],
    pointRadius: 2,
  });
  charts.loss.data.datasets = comparison.series.map((s, i) => line(s.loss, i, 1));
  charts.loss.update();
  charts.accuracy.data.datasets = comparison.series.map((s, i) => line(s.test_accuracy, i, 100));
  charts.accuracy.update();
  $("#compare-jobs-table").replaceChildren(jobsHead(comparison.jobs), ...resultRows(comparison.jobs));
  $("#compare-classes").replaceChildren(
    jobsHead(comparison.jobs), ...classRows(comparison.per_class_accuracy));
  $("#compare-config").replaceChildren(
    jobsHead(comparison.jobs), ...configRows(comparison.config.differing));
  const same = Object.entries(comparison.config.same);
  $("#compare-same-count").textContent = `${same.length} fields the same in every job`;
  $("#compare-same").replaceChildren(
    ...same.map(([field, value]) => cells(field, [configValue(value)])));
}

function jobsHead(jobs) {
  const row = document.createElement("tr");
  row.append(document.createElement("th"));
  jobs.forEach((job, i) => {
    const th = document.createElement("th");
    const link = document.createElement("a");
    link.href = `#/jobs/${job.id}`;
    link.textContent = jobLabel(job);
    link.style.color = JOB_COLOURS[i];
    th.append(link);
    row.append(th);
  });
  return row;
}

// A row: its name, then one cell a job; the cells at `best` marked.
function cells(name, values, best) {
  const row = document.createElement("tr");
  row.dataset.field = name;
  const th = document.createElement("th");
  th.textContent = name;
  row.append(th);
  values.forEach((value, i) => {
    const cell = document.createElement("td");
    cell.textContent = value === null || value === undefined ? "–" : String(value);
    if (best && best.includes(i)) cell.classList.add("best");
    row.append(cell);
  });
  return row;
}

function resultRows(jobs) {
  const seconds = (s) => (s === null ? null : `${s.toFixed(1)} s`);
  const accuracies = jobs.map((j) => j.test_accuracy);
  return [
    cells("status", jobs.map((j) => j.status)),
    cells("test accuracy", accuracies.map(percent), bestOf(accuracies)),
    cells("epochs done", jobs.map((j) => j.epochs_done)),
    cells("best epoch", jobs.map((j) => j.best_epoch)),
    cells("final test loss", jobs.map((j) => j.test_loss === null ? null : j.test_loss.toFixed(4))),
    cells("images/s", jobs.map((j) => j.images_per_s === null ? null : Math.round(j.images_per_s))),
    cells("training time", jobs.map((j) => seconds(j.training_s))),
  ];
}

function bestOf(values) {
  const present = values.filter((v) => v !== null);
  if (!present.length) return [];
  const highest = Math.max(...present);
  return values.flatMap((v, i) => (v === highest ? [i] : []));
}

function classRows(perClass) {
  return Object.entries(perClass).map(([name, compared]) =>
    cells(name, compared.accuracy.map((a) => (a === null ? null : percent(a))), compared.best));
}

function configRows(differing) {
  return Object.entries(differing).map(([field, values]) => cells(field, values.map(configValue)));
}

// Lists and mappings as JSON, as the API has them; numbers, text and null as they are.
function configValue(value) {
  return typeof value === "object" && value !== null ? JSON.stringify(value) : value;
}
