"""The training images counter of /metrics: one series a worker, exact at each job's end, and
unmoved by deleting jobs."""

from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from app.db import session_scope
from app.jobs.worker_registry import register_worker
from tests.conftest import Env
from workers.worker import Worker

COUNTER = "trainserve_training_images"


def trained(client: TestClient) -> dict[str, float]:
    """The counter's samples by worker; also checks the family's type and its one label."""
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    family = families[COUNTER]
    assert family.type == "counter"
    assert {tuple(sample.labels) for sample in family.samples} <= {("worker",)}
    return {s.labels["worker"]: s.value for s in family.samples if s.name == f"{COUNTER}_total"}


def test_each_worker_counts_every_image_it_trains(
    client: TestClient, env: Env, synthetic_cifar: Path
) -> None:
    worker = Worker(env.settings(), worker_id="w1")
    with session_scope(write=True) as session:
        register_worker(session, worker.worker_id, worker.offer)
    assert trained(client) == {"w1": 0}

    # 400 images in batches of 48: eight full ones and a last one of 16, twice.
    body = {"epochs": 2, "batch_size": 48, "log_every": 5, "seed": 3, "device": "cpu"}
    first = client.post("/jobs", json=body).json()["id"]
    assert worker.run_once()
    assert client.get(f"/jobs/{first}").json()["status"] == "succeeded"
    assert trained(client) == {"w1": 800}

    # Not registered as a model version, so that it may be deleted.
    unregistered = {**body, "epochs": 1, "max_train_samples": 40, "register_as": None}
    second = client.post("/jobs", json=unregistered).json()
    assert worker.run_once()
    assert client.get(f"/jobs/{second['id']}").json()["status"] == "succeeded"
    assert trained(client) == {"w1": 840}

    assert client.delete(f"/jobs/{second['id']}").status_code == 204
    assert trained(client) == {"w1": 840}  # what was trained stays counted
    text = client.get("/metrics").text
    assert "trainserve_queue_depth" not in text and "images_per_second" not in text
