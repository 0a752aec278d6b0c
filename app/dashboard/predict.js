// The image drop that classifies a picture with /predict (the default model, or one job's).
"use strict";

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

