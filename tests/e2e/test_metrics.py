"""GET /metrics on a real server with a real worker: what a Prometheus scrape reads."""

import io
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Env
from tests.e2e.conftest import Service, wait_for

# Once, on SQLite: the exposition does not depend on the database.
pytestmark = [pytest.mark.e2e, pytest.mark.database("sqlite")]

TINY_JOB = {"epochs": 1, "batch_size": 8, "max_train_samples": 40, "seed": 1, "device": "cpu"}
LONG_JOB = {"epochs": 1000, "batch_size": 4, "seed": 2, "device": "cpu"}
IMAGES = "trainserve_training_images_total"


def samples(client: httpx.Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a scrape, by name and labels."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(
    scrape: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return scrape.get((name, frozenset(labels.items())), 0.0)


def png() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((32, 32, 3), 120, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_scrape_shows_requests_jobs_training_images_and_batches(
    env: Env, service: Service, synthetic_cifar: Path
) -> None:
    service.overrides = {"TRAINSERVE_HEARTBEAT_SECONDS": "0.3"}
    service.start_api()
    service.start_worker()
    client = service.client()

    tiny = client.post("/jobs", json=TINY_JOB).json()["id"]
    wait_for(lambda: client.get(f"/jobs/{tiny}").json()["status"] == "succeeded", 120, "tiny job")
    worker = client.get("/workers").json()["items"][0]["id"]
    # The worker stores its count as the job ends: one epoch of the 40 images, exactly.
    wait_for(
        lambda: value(samples(client), IMAGES, worker=worker) == 40, 30, "the tiny job's images"
    )
    for _ in range(3):
        assert client.post("/predict", files={"file": ("a.png", png())}).status_code == 200
    pair = [("files", ("a.png", png())), ("files", ("b.png", png()))]
    assert client.post("/predict/batch", files=pair).status_code == 200
    named = client.post("/predict", params={"job_id": tiny}, files={"file": ("a.png", png())})
    assert named.status_code == 200
    assert client.get("/jobs/999").status_code == 404
    assert client.get("/jobs/998").status_code == 404
    assert client.get("/no/such/path").status_code == 404

    long = client.post("/jobs", json=LONG_JOB).json()["id"]
    waiting = [client.post("/jobs", json=LONG_JOB).json()["id"] for _ in range(2)]
    # A running job's images reach the counter at every heartbeat, in batches of 4.
    grown = wait_for(
        lambda: value(samples(client), IMAGES, worker=worker) > 40, 60, "the counter never grew"
    )
    assert grown

    scrape = samples(client)
    jobs = {
        s: value(scrape, "trainserve_jobs", status=s) for s in ("queued", "running", "succeeded")
    }
    assert jobs == {"queued": 2, "running": 1, "succeeded": 1}
    assert (value(scrape, IMAGES, worker=worker) - 40) % 4 == 0
    assert [name for name, _ in scrape if name.startswith("trainserve_training_")] == [IMAGES]
    assert value(scrape, "trainserve_prediction_batch_size_count") == 5  # 4 single, 1 pair
    assert value(scrape, "trainserve_prediction_batch_size_sum") == 6
    assert value(scrape, "trainserve_prediction_batch_size_bucket", le="1.0") == 4
    predictions = "trainserve_predictions_total"
    assert value(scrape, predictions, model="cifar10", version="1") == 5
    assert value(scrape, predictions, model="-", version="-") == 1  # named by job_id
    requests = "trainserve_http_requests_total"
    assert value(scrape, requests, method="POST", route="/predict", status="200") == 4
    assert value(scrape, requests, method="POST", route="/predict/batch", status="200") == 1
    assert value(scrape, requests, method="GET", route="/jobs/{job_id}", status="404") == 2
    assert value(scrape, requests, method="GET", route="unmatched", status="404") == 1
    assert value(scrape, requests, method="POST", route="/jobs", status="202") == 4
    latency = "trainserve_http_request_duration_seconds_count"
    assert value(scrape, latency, method="POST", route="/predict") == 4
    for job_id in (long, *waiting):
        client.post(f"/jobs/{job_id}/cancel")
