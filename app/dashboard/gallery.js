// The test images a finished job's model gets wrong, most confident mistakes first: all of them,
// or one confusion-matrix cell's (true class, predicted class).
"use strict";

const GALLERY_SIZE = 24;

async function showMistakes(job, trueClass, predictedClass) {
  const panel = $("#gallery-panel");
  const query = new URLSearchParams({ limit: GALLERY_SIZE });
  if (trueClass !== null) query.set("true", trueClass);
  if (predictedClass !== null) query.set("predicted", predictedClass);
  let answer;
  try {
    answer = await api("GET", `/jobs/${job.id}/errors?${query}`);
  } catch (error) {
    panel.hidden = true; // a job with no stored predictions (trained before they were kept)
    return;
  }
  panel.hidden = false;
  const which = trueClass === null ? "all classes" : `${trueClass} taken for ${predictedClass}`;
  $("#gallery-title").textContent =
    `${which}: ${Math.min(answer.total, GALLERY_SIZE)} of ${answer.total}, most confident first`;
  const gallery = $("#gallery");
  gallery.querySelectorAll("img").forEach((img) => URL.revokeObjectURL(img.src));
  gallery.replaceChildren(...answer.items.map((item) => mistakeFigure(job, item)));
}

function mistakeFigure(job, item) {
  const figure = document.createElement("figure");
  figure.dataset.index = item.index;
  figure.innerHTML = "<img><figcaption></figcaption>";
  const img = $("img", figure);
  img.alt = `test image ${item.index}, a ${item.true}`;
  $("figcaption", figure).textContent = `${item.predicted} ${percent(item.confidence)} (${item.true})`;
  figure.title = `test image ${item.index}: a ${item.true}, taken for a ${item.predicted}`;
  apiImage(`/datasets/${job.config.dataset}/images/test/${item.index}.png`)
    .then((url) => { img.src = url; })
    .catch((error) => showNotice(`image ${item.index}: ${error.message}`));
  return figure;
}
