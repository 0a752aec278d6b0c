"""The dashboard in headless Chromium against a real server and worker, with API keys on."""

import io
import os
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from selenium.webdriver.common.by import By

from tests.conftest import Env, synthetic_split
from tests.e2e.browser import WebDriver, console_errors, until
from tests.e2e.conftest import Service, wait_for

# Once, on SQLite: the page does not depend on the database.
pytestmark = [pytest.mark.e2e, pytest.mark.database("sqlite")]

ADMIN = "dashboard-admin-key"
SCREENSHOT_NAMES = ("dashboard.png", "registry.png", "compare.png", "gallery.png")
# Enough steps for the synthetic classes to be learnt, so that the picture shows a real curve.
JOB = {
    "epochs": 3,
    "batch_size": 16,
    "optimizer": "adam",
    "learning_rate": 0.003,
    "log_every": 5,
    "seed": 3,
}


def chart_data(driver: WebDriver, canvas: str) -> dict[str, Any]:
    data: dict[str, Any] = driver.execute_script(
        f"const c = Chart.getChart('{canvas}'); "
        "return {labels: c.data.labels, data: c.data.datasets[0].data};"
    )
    return data


def test_the_dashboard_shows_jobs_charts_submits_and_classifies(
    env: Env, service: Service, synthetic_cifar: Path, browser: WebDriver
) -> None:
    service.overrides["TRAINSERVE_ADMIN_KEY"] = ADMIN
    service.start_api()
    service.start_worker()
    api = httpx.Client(
        base_url=service.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
    )
    first = api.post("/jobs", json=JOB).json()["id"]
    wait_for(
        lambda: api.get(f"/jobs/{first}").json()["status"] == "succeeded", 120, "never trained"
    )
    metrics = api.get(f"/jobs/{first}/metrics").json()

    # With keys on, the page asks for one before it calls the API.
    browser.get(service.url + "/")
    until(browser, "return !document.querySelector('#notice').hidden")
    assert "needs an API key" in browser.find_element(By.ID, "notice").text
    browser.find_element(By.ID, "api-key").send_keys(ADMIN)
    browser.find_element(By.CSS_SELECTOR, "#key-form button").click()
    until(browser, f"return document.querySelector('tr[data-job-id=\"{first}\"] .status')")
    row = browser.find_element(By.CSS_SELECTOR, f'tr[data-job-id="{first}"]')
    assert "succeeded" in row.text
    assert f"{100 * metrics['test_accuracy']:.2f}%" in row.text

    # A finished job's page: loss curve, accuracy by epoch, by class, confusion matrix.
    browser.get(f"{service.url}/#/jobs/{first}")
    until(browser, "return document.querySelectorAll('#confusion tr').length === 11")
    assert browser.find_element(By.ID, "job-status").text == "succeeded"
    loss = chart_data(browser, "loss-chart")["data"]
    assert [point["y"] for point in loss] == [p["loss"] for p in metrics["loss_history"]]
    # Against epochs, as the tutorial draws it: 25 steps an epoch, a point every 5.
    assert [point["x"] for point in loss] == [(i + 1) / 5 for i in range(15)]
    accuracy = chart_data(browser, "accuracy-chart")
    assert accuracy["labels"] == ["epoch 1", "epoch 2", "epoch 3"]
    assert accuracy["data"] == [100 * e["test_accuracy"] for e in metrics["epochs"]]
    classes = chart_data(browser, "class-chart")
    assert classes["labels"] == list(metrics["per_class_accuracy"])
    assert classes["data"] == [100 * a for a in metrics["per_class_accuracy"].values()]
    cells = browser.execute_script(
        "return [...document.querySelectorAll('#confusion tr')].slice(1)"
        ".map(r => [...r.querySelectorAll('td')].map(c => Number(c.textContent)))"
    )
    assert cells == metrics["confusion_matrix"]

    # An image dropped on the job's page is classified by that job's model.
    image = env.root / "upload.png"
    Image.fromarray(synthetic_split(1, seed=11)[0][0].transpose(1, 2, 0)).save(image)
    browser.find_element(By.CSS_SELECTOR, "#view .predict-file").send_keys(str(image))
    until(browser, "return document.querySelector('.predicted-label').textContent")
    answer = api.post(
        "/predict", files={"file": ("upload.png", image.read_bytes())}, params={"job_id": first}
    ).json()
    label = browser.find_element(By.CSS_SELECTOR, ".predicted-label").text
    assert (
        label
        == f"{answer['label']} ({100 * answer['probabilities'][answer['label']]:.2f}%, job {first})"
    )
    shown = browser.execute_script(
        "return [...document.querySelectorAll('.probabilities tr')].map(r => r.dataset.label)"
    )
    assert shown == sorted(answer["probabilities"], key=answer["probabilities"].get, reverse=True)
    save_screenshot(browser, env.root, "dashboard.png")

    # The form submits a job, and its page follows it live to the end.
    browser.get(service.url + "/#/")
    form = browser.find_element(By.ID, "submit-form")
    for name, value in (("epochs", "1"), ("max_train_samples", "160"), ("log_every", "5")):
        field = form.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    form.find_element(By.NAME, "batch_size").send_keys("16")
    form.find_element(By.ID, "submit-job").click()
    until(browser, "return location.hash === '#/jobs/2'")
    until(browser, "return document.querySelector('#job-status').textContent === 'succeeded'", 120)
    submitted = api.get("/jobs/2").json()
    assert {k: submitted["config"][k] for k in ("epochs", "max_train_samples", "batch_size")} == {
        "epochs": 1,
        "max_train_samples": 160,
        "batch_size": 16,
    }
    live_loss = chart_data(browser, "loss-chart")["data"]
    expected = api.get("/jobs/2/metrics").json()["loss_history"]
    assert [point["y"] for point in live_loss] == [p["loss"] for p in expected]

    # The registry: both jobs registered as cifar10; promote the other one, then roll back.
    browser.get(service.url + "/#/models")
    until(browser, "return document.querySelector('tr[data-model=\"cifar10\"]')")
    before = api.get("/models/cifar10").json()["aliases"]["production"]
    other = 3 - before
    assert browser.find_element(By.ID, "serving").text == (
        f"/predict serves cifar10 v{before} (its production alias) by default."
    )
    browser.get(service.url + "/#/models/cifar10")
    until(browser, "return document.querySelectorAll('#versions-table tbody tr').length === 2")
    browser.find_element(By.CSS_SELECTOR, f'tr[data-version="{other}"] button.promote').click()
    until(
        browser, f"return document.querySelector('#model-serving').textContent.includes('v{other}')"
    )
    assert api.get("/models/cifar10").json()["aliases"]["production"] == other
    browser.find_element(By.CSS_SELECTOR, "#history-table button.rollback").click()
    until(
        browser,
        f"return document.querySelector('#model-serving').textContent.includes('v{before}')",
    )
    history = api.get("/models/cifar10/aliases/production/history").json()
    assert [(m["from_version"], m["to_version"], m["moved_by"]) for m in history[:2]] == [
        (other, before, "admin"),
        (before, other, "admin"),
    ]
    links = browser.execute_script(
        "return [...document.querySelectorAll('tr[data-version=\"1\"] .exports a')]"
        ".map(a => a.getAttribute('href'))"
    )
    assert links == [
        f"/models/cifar10/versions/1/export?format={fmt}"
        for fmt in ("onnx", "torchscript", "safetensors", "card")
    ]
    until(browser, "return document.querySelectorAll('#history-table tbody tr').length === 3")
    save_screenshot(browser, env.root, "registry.png")
    assert console_errors(browser) == []
    api.close()


def save_screenshot(browser: WebDriver, folder: Path, name: str) -> None:
    """A picture of the page; also where TRAINSERVE_SCREENSHOT_DIR says (the pictures in the
    README and the docs are made this way by scripts/test.sh)."""
    assert name in SCREENSHOT_NAMES
    path = folder / name
    assert browser.save_screenshot(str(path))
    with Image.open(path) as picture:
        assert picture.size[0] >= 1000
    target = os.environ.get("TRAINSERVE_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(target) / name)


def test_the_dashboard_compares_jobs_and_shows_a_models_mistakes(
    env: Env, service: Service, synthetic_cifar: Path, browser: WebDriver
) -> None:
    service.overrides["TRAINSERVE_ADMIN_KEY"] = ADMIN  # the gallery's images need the key too
    service.start_api()
    service.start_worker()
    api = httpx.Client(
        base_url=service.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
    )
    # Three short trials of one learning-rate sweep, named as a user would name them.
    trials = {"baseline": 0.003, "slower": 0.0003, "faster": 0.01}
    ids = [
        api.post("/jobs", json={**JOB, "epochs": 2, "learning_rate": rate, "name": name}).json()[
            "id"
        ]
        for name, rate in trials.items()
    ]
    wait_for(
        lambda: all(api.get(f"/jobs/{i}").json()["status"] == "succeeded" for i in ids),
        180,
        "the trials never all trained",
    )

    # Select the three in the list, then compare them.
    browser.get(service.url + "/")
    browser.find_element(By.ID, "api-key").send_keys(ADMIN)
    browser.find_element(By.CSS_SELECTOR, "#key-form button").click()
    until(browser, f"return document.querySelector('tr[data-job-id=\"{ids[-1]}\"]')")
    names = browser.execute_script(
        "return [...document.querySelectorAll('#jobs-table tbody tr')]"
        ".map(r => r.querySelector('.name').textContent)"
    )
    assert names == list(reversed(trials))  # newest first
    for job_id in ids:
        browser.find_element(By.CSS_SELECTOR, f'tr[data-job-id="{job_id}"] .select-job').click()
    button = browser.find_element(By.ID, "compare-jobs")
    assert button.text == "Compare selected (3)"
    button.click()
    until(browser, f"return location.hash === '#/compare/{','.join(map(str, ids))}'")
    until(browser, "return Chart.getChart('compare-accuracy')?.data.datasets.length === 3")
    comparison = api.get("/jobs/compare", params={"ids": ",".join(map(str, ids))}).json()
    for canvas, series, scale in (
        ("compare-loss", "loss", 1),
        ("compare-accuracy", "test_accuracy", 100),
    ):
        shown = browser.execute_script(
            f"return Chart.getChart('{canvas}').data.datasets.map(d => [d.label, d.data])"
        )
        assert shown == [
            [f"{job_id} {name}", [{"x": p["x"], "y": scale * p["y"]} for p in s[series]]]
            for job_id, name, s in zip(ids, trials, comparison["series"], strict=True)
        ]
    differing = browser.execute_script(
        "return [...document.querySelectorAll('#compare-config tr[data-field]')]"
        ".map(r => [r.dataset.field, [...r.querySelectorAll('td')].map(c => c.textContent)])"
    )
    assert differing == [["learning_rate", ["0.003", "0.0003", "0.01"]]]
    best = browser.execute_script(
        "const rows = document.querySelectorAll('#compare-classes tr[data-field]');"
        "return Object.fromEntries([...rows]"
        ".map(r => [r.dataset.field, [...r.querySelectorAll('td')]"
        ".flatMap((c, i) => c.classList.contains('best') ? [i] : [])]))"
    )
    assert best == {name: c["best"] for name, c in comparison["per_class_accuracy"].items()}
    save_screenshot(browser, env.root, "compare.png")

    # The slow trial's page: a confusion-matrix cell of mistakes opens exactly those images.
    slower = ids[1]
    metrics = api.get(f"/jobs/{slower}/metrics").json()
    classes, matrix = metrics["classes"], metrics["confusion_matrix"]
    true_index, predicted_index = max(
        ((t, p) for t in range(10) for p in range(10) if t != p), key=lambda c: matrix[c[0]][c[1]]
    )
    assert matrix[true_index][predicted_index] > 0
    browser.get(f"{service.url}/#/jobs/{slower}")
    until(browser, "return document.querySelectorAll('#confusion tr').length === 11")
    cell = browser.find_elements(By.CSS_SELECTOR, "#confusion tr")[1 + true_index]
    cell.find_elements(By.CSS_SELECTOR, "td")[predicted_index].click()
    wanted = api.get(
        f"/jobs/{slower}/errors",
        params={"true": classes[true_index], "predicted": classes[predicted_index], "limit": 24},
    ).json()
    # Each mistake's cell counts exactly the mistakes the list gives for it.
    for t, p in ((t, p) for t in range(10) for p in range(10) if t != p):
        cell_list = api.get(
            f"/jobs/{slower}/errors",
            params={"true": classes[t], "predicted": classes[p], "limit": 1},
        ).json()
        assert cell_list["total"] == matrix[t][p], (classes[t], classes[p])
    until(
        browser,
        f"return document.querySelectorAll('#gallery figure').length === {len(wanted['items'])}"
        " && [...document.querySelectorAll('#gallery img')]"
        ".every(i => i.complete && i.naturalWidth)",
    )
    shown = browser.execute_script(
        "return [...document.querySelectorAll('#gallery figure')].map(f => Number(f.dataset.index))"
    )
    assert shown == [item["index"] for item in wanted["items"]]
    title = browser.find_element(By.ID, "gallery-title").text
    assert title.startswith(f"{classes[true_index]} taken for {classes[predicted_index]}")
    # Each picture is the test image the API serves at that index.
    first = browser.execute_script(
        "const img = document.querySelector('#gallery img');"
        "const c = document.createElement('canvas'); c.width = c.height = 32;"
        "const g = c.getContext('2d'); g.drawImage(img, 0, 0);"
        "return [...g.getImageData(0, 0, 32, 32).data]"
    )
    served = api.get(f"/datasets/cifar10/images/test/{wanted['items'][0]['index']}.png")
    with Image.open(io.BytesIO(served.content)) as picture:
        assert first == list(picture.convert("RGBA").tobytes())
    beyond = api.get("/datasets/cifar10/images/test/100.png")  # the test split has 100
    assert beyond.status_code == 404
    assert beyond.json()["detail"] == (
        "CIFAR-10's test split has 100 images: index 100 is not among 0 to 99"
    )
    # Without a validation set there is no validation series (nor its struck-out legend).
    assert (
        browser.execute_script("return Chart.getChart('accuracy-chart').data.datasets.length") == 1
    )
    browser.execute_script("document.querySelector('#gallery-panel').scrollIntoView()")
    save_screenshot(browser, env.root, "gallery.png")

    # The list says which job's model /predict serves, and why a job waits; no empty image box
    # shows before an image is sent.
    waiting = api.post("/jobs", json={**JOB, "device": "cuda"}).json()["id"]
    served = api.get("/models/cifar10").json()["aliases"]["production"]
    served_job = api.get(f"/models/cifar10/versions/{served}").json()["job_id"]
    browser.get(service.url + "/")
    until(browser, f"return document.querySelector('tr[data-job-id=\"{waiting}\"]')")
    notes = browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#jobs-table tbody tr')]"
        ".map(r => [r.dataset.jobId, r.querySelector('.note').textContent]))"
    )
    reason = api.get(f"/jobs/{waiting}").json()["waiting_reason"]
    assert reason and notes[str(waiting)] == reason
    assert notes[str(served_job)] == "serves /predict"
    assert (
        browser.find_element(By.ID, "served-model").text == f"(cifar10 v{served}, job {served_job})"
    )
    assert not browser.find_element(By.CSS_SELECTOR, "#view .prediction").is_displayed()

    # A cancelled job's page offers Retry and no image drop (it has no model to answer).
    assert api.post(f"/jobs/{waiting}/cancel").status_code == 200
    browser.get(f"{service.url}/#/jobs/{waiting}")
    until(browser, "return document.querySelector('#job-status').textContent === 'cancelled'")
    until(browser, "return !document.querySelector('#retry-job').hidden")
    assert not browser.find_element(By.ID, "job-predict").is_displayed()
    assert not browser.find_element(By.ID, "cancel-job").is_displayed()
    browser.find_element(By.ID, "retry-job").click()
    until(browser, f"return location.hash === '#/jobs/{waiting + 1}'")
    assert api.get(f"/jobs/{waiting + 1}").json()["retry_of"] == waiting
    assert console_errors(browser) == []
    api.close()
