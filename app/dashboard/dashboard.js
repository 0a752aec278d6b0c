// The dashboard's entry point: which page the address shows, and the API key form. The pages
// are in jobs.js, job.js (with gallery.js), compare.js and registry.js; the shared parts in common.js.
"use strict";

function route() {
  state.leave.forEach((stop) => stop());
  state.leave = [];
  const view = $("#view");
  const job = location.hash.match(/^#\/jobs\/(\d+)$/);
  const model = location.hash.match(/^#\/models\/([a-z0-9][a-z0-9._-]*)$/);
  const compared = location.hash.match(/^#\/compare\/(\d+(?:,\d+)+)$/);
  if (job) jobView(view, Number(job[1]));
  else if (compared) compareView(view, compared[1].split(",").map(Number)); // compare.js
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
