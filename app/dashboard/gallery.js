// The test examples a finished job's model gets wrong, most confident mistakes first: all of
// them, or one confusion-matrix cell's (true class, predicted class). A table's rows have no
// image: they show as their row number.
"use strict";

const GALLERY_SIZE = 24;
const gallery = { shown: 0, urls: [] }; // the latest request, and the image addresses to free

async function showMistakes(job, trueClass, predictedClass) {
  const request = ++gallery.shown;
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
  if (request !== gallery.shown) return; // a later click has asked for other images
  panel.hidden = false;
  const which = trueClass === null ? "all classes" : `${trueClass} taken for ${predictedClass}`;
  $("#gallery-title").textContent =
    `${which}: ${Math.min(answer.total, GALLERY_SIZE)} of ${answer.total}, most confident first`;
  forgetImages();
  $("#gallery").replaceChildren(...answer.items.map(mistakeFigure));
}

function forgetImages() {
  gallery.urls.forEach((url) => URL.revokeObjectURL(url));
  gallery.urls = [];
}

function mistakeFigure(item) {
  const figure = document.createElement("figure");
  figure.dataset.index = item.index;
  const caption = document.createElement("figcaption");
  caption.textContent = `${item.predicted} ${percent(item.confidence)} (${item.true})`;
  figure.title = `test example ${item.index}: a ${item.true}, taken for a ${item.predicted}`;
  if (item.image === null) {
    const row = document.createElement("div");
    row.className = "row-number";
    row.textContent = `row ${item.index}`;
    figure.append(row, caption);
    return figure;
  }
  const img = document.createElement("img");
  img.alt = `test image ${item.index}, a ${item.true}`;
  figure.append(img, caption);
  const request = gallery.shown;
  apiImage(item.image)
    .then((url) => {
      gallery.urls.push(url);
      if (request === gallery.shown) img.src = url;
    })
    .catch((error) => showNotice(`image ${item.index}: ${error.message}`));
  return figure;
}
