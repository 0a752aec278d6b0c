// The dashboard's registry pages: every model, and one model's versions with promote and roll
// back (both need the admin key; the API refuses them to any other). Uses dashboard.js's
// helpers in common.js ($, api, percent, showNotice, needsKey, askForKey, state, PRODUCTION).
"use strict";

const MODELS_REFRESH_MS = 2000;
const EXPORTS = [["onnx", "ONNX"], ["torchscript", "TorchScript"], ["safetensors", "safetensors"],
  ["card", "card"]];

function modelsView(view) {
  view.replaceChildren($("#models-view").content.cloneNode(true));
  const name = document.body.dataset.defaultModel;
  const refresh = async () => {
    if (needsKey()) return askForKey();
    try {
      const models = await api("GET", "/models");
      $("#models-table tbody").replaceChildren(...models.map(modelRow));
      const served = models.find((m) => m.name === name);
      const version = served && served.aliases[PRODUCTION];
      $("#serving").textContent = version
        ? `/predict serves ${name} v${version} (its ${PRODUCTION} alias) by default.`
        : `/predict has no default model yet: ${name} has no ${PRODUCTION} version.`;
    } catch (error) {
      showNotice(`models: ${error.message}`);
    }
  };
  refresh();
  const timer = setInterval(refresh, MODELS_REFRESH_MS);
  state.leave.push(() => clearInterval(timer));
}

function modelRow(model) {
  const row = document.createElement("tr");
  row.dataset.model = model.name;
  row.innerHTML = "<td><a></a></td><td></td><td></td><td></td>";
  $("a", row).href = `#/models/${model.name}`;
  $("a", row).textContent = model.name;
  row.cells[1].textContent = model.latest_version === null ? "–" : `v${model.latest_version}`;
  row.cells[2].textContent =
    Object.entries(model.aliases).map(([alias, v]) => `${alias} → v${v}`).join(", ") || "–";
  row.cells[3].textContent = model.description;
  return row;
}

function modelView(view, name) {
  view.replaceChildren($("#model-view").content.cloneNode(true));
  $("#model-name").textContent = name;
  if (needsKey()) return askForKey();
  showModel(name);
}

async function showModel(name) {
  try {
    const [model, history] = await Promise.all([
      api("GET", `/models/${name}`),
      api("GET", `/models/${name}/aliases/${PRODUCTION}/history`).catch(() => []),
    ]);
    const current = model.aliases[PRODUCTION];
    const isDefault = name === document.body.dataset.defaultModel;
    $("#model-serving").textContent = current
      ? `(${PRODUCTION}: v${current}${isDefault ? ", served by /predict by default" : ""})`
      : `(no ${PRODUCTION} version)`;
    $("#versions-table tbody").replaceChildren(
      ...model.versions.map((v) => versionRow(name, v, current)));
    $("#history-table tbody").replaceChildren(...history.map((m, i) => moveRow(name, m, i)));
  } catch (error) {
    showNotice(error.message);
  }
}

function versionRow(name, version, current) {
  const row = document.createElement("tr");
  row.dataset.version = version.version;
  row.innerHTML =
    "<td></td><td></td><td class='num'></td><td><a></a></td><td></td><td></td><td></td><td></td>";
  row.cells[0].textContent = `v${version.version}`;
  row.cells[1].textContent = version.aliases.join(", ") || "–";
  row.cells[2].textContent = percent(version.test_accuracy);
  $("a", row).href = `#/jobs/${version.job_id}`;
  $("a", row).textContent = version.job_id;
  const lineage = version.lineage;
  row.cells[4].textContent = `${lineage.dataset.id}, ${lineage.test_images ?? "?"} images`;
  row.cells[5].textContent = new Date(version.created_at).toLocaleString();
  row.cells[6].textContent = version.promotion || version.description;
  if (version.version !== current) {
    row.cells[7].append(aliasButton(name, version.version, "Promote", "promote"));
  }
  row.cells[7].append(exportLinks(name, version.version));
  return row;
}

// Downloads go through fetch, which can send the API key; a plain link could not.
function exportLinks(name, version) {
  const links = document.createElement("div");
  links.className = "exports";
  for (const [format, text] of EXPORTS) {
    const link = document.createElement("a");
    link.href = `/models/${name}/versions/${version}/export?format=${format}`;
    link.textContent = text;
    link.dataset.format = format;
    link.addEventListener("click", async (event) => {
      event.preventDefault();
      try {
        const response = await fetch(link.href, { headers: headers() });
        if (!response.ok) {
          const answer = await response.json().catch(() => ({}));
          throw new Error(answer.detail || `${response.status} ${response.statusText}`);
        }
        const disposition = response.headers.get("Content-Disposition") || "";
        const save = document.createElement("a");
        save.href = URL.createObjectURL(await response.blob());
        save.download = (disposition.match(/filename="([^"]+)"/) || [])[1] || "export";
        save.click();
        URL.revokeObjectURL(save.href);
      } catch (error) {
        showNotice(`export: ${error.message}`);
      }
    });
    links.append(link);
  }
  return links;
}

function moveRow(name, move, index) {
  const row = document.createElement("tr");
  row.innerHTML = "<td></td><td></td><td></td><td></td><td></td>";
  const label = (v) => (v === null ? "–" : `v${v}`);
  row.cells[0].textContent = label(move.from_version);
  row.cells[1].textContent = label(move.to_version);
  row.cells[2].textContent = new Date(move.moved_at).toLocaleString();
  row.cells[3].textContent = move.moved_by;
  // The newest move can be undone: production goes back to where it was.
  if (index === 0 && move.from_version !== null) {
    row.cells[4].append(
      aliasButton(name, move.from_version, `Roll back to v${move.from_version}`, "rollback"));
  }
  return row;
}

function aliasButton(name, version, text, role) {
  const button = document.createElement("button");
  button.className = `small ${role}`;
  button.textContent = text;
  button.addEventListener("click", async () => {
    try {
      await api("PUT", `/models/${name}/aliases/${PRODUCTION}`, { version });
      showNotice("");
    } catch (error) {
      showNotice(`${text.toLowerCase()}: ${error.message}`);
    }
    showModel(name);
  });
  return button;
}
