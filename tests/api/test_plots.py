"""GET /jobs/{id}/plots/loss.png and confusion.png: real PNGs drawn from a real job's records."""

import io

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from tests.api.conftest import TrainJob


def picture(response_content: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(response_content))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGB"))


def test_a_finished_job_draws_its_loss_curve_and_confusion_matrix(
    client: TestClient, train_job: TrainJob
) -> None:
    job_id = train_job(epochs=2)
    for name, size in (("loss.png", (450, 800)), ("confusion.png", (600, 650))):
        response = client.get(f"/jobs/{job_id}/plots/{name}")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "image/png"
        assert response.headers["cache-control"] == "no-store"
        pixels = picture(response.content)
        assert pixels.shape[:2] == size
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20  # drawn, not blank


def test_every_job_has_a_curve_by_default(client: TestClient, train_job: TrainJob) -> None:
    # 400 images in batches of 16: 25 mini-batches an epoch, too few for the tutorial's 2,000,
    # so a point every 2 (a tenth of an epoch, rounded down).
    job_id = train_job(epochs=2, log_every=None)
    points = client.get(f"/jobs/{job_id}/metrics").json()["loss_history"]
    assert [(p["epoch"], p["step"]) for p in points] == [
        (epoch, step) for epoch in (1, 2) for step in range(2, 25, 2)
    ]


def test_a_job_with_no_loss_points_draws_its_epochs_losses(
    client: TestClient, train_job: TrainJob
) -> None:
    job_id = train_job(epochs=2, log_every=1000)
    assert client.get(f"/jobs/{job_id}/metrics").json()["loss_history"] == []
    response = client.get(f"/jobs/{job_id}/plots/loss.png")
    assert response.status_code == 200, response.text
    assert len(np.unique(picture(response.content).reshape(-1, 3), axis=0)) > 20


def test_nothing_to_draw_is_409_and_no_job_is_404(client: TestClient) -> None:
    job_id = client.post("/jobs", json={"log_every": 500}).json()["id"]
    loss = client.get(f"/jobs/{job_id}/plots/loss.png")
    assert (loss.status_code, loss.json()["detail"]) == (
        409,
        f"job {job_id} has no loss points yet: it has not started training",
    )
    confusion = client.get(f"/jobs/{job_id}/plots/confusion.png")
    assert (confusion.status_code, confusion.json()["detail"]) == (
        409,
        f"job {job_id} has no confusion matrix: it is made on the test set when the job "
        "succeeds (its status is queued)",
    )
    assert client.post(f"/jobs/{job_id}/cancel").status_code == 200
    cancelled = client.get(f"/jobs/{job_id}/plots/loss.png")
    assert (cancelled.status_code, cancelled.json()["detail"]) == (
        409,
        f"job {job_id} has no loss points: it was cancelled before it recorded one",
    )
    assert client.get("/jobs/999/plots/loss.png").status_code == 404
