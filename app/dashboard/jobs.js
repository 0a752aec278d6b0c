// The jobs page: the list (select jobs to compare them), the submit form and the image drop for
// the model /predict serves.
"use strict";

const JOBS_REFRESH_MS = 2000;
const COMPARE_MAX = 10;

function jobsView(view) {
  view.replaceChildren($("#jobs-view").content.cloneNode(true));
  predictBox($(".predict", view), null);
  $("#submit-form").addEventListener("submit", submitJob);
  const selected = new Set();
  const compareButton = $("#compare-jobs");
  const showSelection = () => {
    compareButton.disabled = selected.size < 2 || selected.size > COMPARE_MAX;
    compareButton.textContent = `Compare selected (${selected.size})`;
  };
  $("#jobs-table tbody").addEventListener("change", (event) => {
    const id = Number(event.target.closest("tr").dataset.jobId);
    if (event.target.checked) selected.add(id);
    else selected.delete(id);
    showSelection();
  });
  compareButton.addEventListener("click", () => {
    location.hash = `#/compare/${[...selected].sort((a, b) => a - b).join(",")}`;
  });
  showSelection();
  const refresh = async () => {
    if (needsKey()) return askForKey();
    try {
      const [page, served] = await Promise.all([api("GET", "/jobs?limit=50"), servedModel()]);
      $("#jobs-total").textContent = `(${page.total})`;
      $("#served-model").textContent = served.text;
      $("#jobs-table tbody").replaceChildren(
        ...page.items.map((job) => jobRow(job, selected, served.jobId)));
    } catch (error) {
      showNotice(`jobs: ${error.message}`);
    }
  };
  refresh();
  const timer = setInterval(refresh, JOBS_REFRESH_MS);
  state.leave.push(() => clearInterval(timer));
}

// Which registered version /predict answers with by default, and the job that trained it.
async function servedModel() {
  const name = document.body.dataset.defaultModel;
  const model = (await api("GET", "/models")).find((m) => m.name === name);
  const served = model && model.aliases[PRODUCTION];
  if (!served) return { jobId: null, text: `(none yet: ${name} has no ${PRODUCTION} version)` };
  const version = await api("GET", `/models/${name}/versions/${served}`);
  return { jobId: version.job_id, text: `(${name} v${served}, job ${version.job_id})` };
}

function jobRow(job, selected, servedJobId) {
  const row = document.createElement("tr");
  row.dataset.jobId = job.id;
  row.innerHTML =
    `<td><input type="checkbox" class="select-job"></td><td><a></a></td><td class="name"></td>` +
    `<td><span class="status"></span></td><td><div class="bar"><div></div></div></td>` +
    `<td class="num"></td><td></td><td></td><td class="note"></td>`;
  const box = $(".select-job", row);
  box.checked = selected.has(job.id);
  box.setAttribute("aria-label", `select job ${job.id} to compare`);
  $("a", row).href = `#/jobs/${job.id}`;
  $("a", row).textContent = job.id;
  $(".name", row).textContent = job.name || "";
  statusBadge($(".status", row), job.status);
  $(".bar div", row).style.width = `${(100 * progressOf(job)).toFixed(1)}%`;
  row.cells[5].textContent = percent(job.test_accuracy);
  row.cells[6].textContent = job.device || "–";
  row.cells[7].textContent = new Date(job.created_at).toLocaleString();
  const note = $(".note", row);
  if (job.id === servedJobId) {
    note.textContent = "serves /predict";
    note.classList.add("serving");
  } else {
    note.textContent = job.error || job.waiting_reason || "";
    note.classList.toggle("error", Boolean(job.error));
  }
  note.title = note.textContent;
  return row;
}

async function submitJob(event) {
  event.preventDefault();
  const body = {};
  for (const [name, value] of new FormData(event.target)) {
    if (value === "") continue;
    body[name] = ["recipe", "optimizer", "name"].includes(name) ? value : Number(value);
  }
  try {
    const job = await api("POST", "/jobs", body);
    showNotice("");
    location.hash = `#/jobs/${job.id}`;
  } catch (error) {
    showNotice(`submit: ${error.message}`);
  }
}
