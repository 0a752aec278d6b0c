"""Early stopping through the API: the job's fields, its per-epoch validation results, the kept
epoch, and the options it cannot go with."""

import numpy as np
from fastapi.testclient import TestClient

from tests.conftest import Env, synthetic_split, write_cifar_layout
from workers.worker import Worker


def noisy_cifar(env: Env) -> None:
    """CIFAR-10-format data with random labels: the held-out loss rises as training goes on."""

    def split(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        images, _ = synthetic_split(count, seed)
        return images, np.random.default_rng(seed).integers(0, 10, size=count)

    write_cifar_layout(env.data_dir, split(400, 1), split(100, 2))


def test_a_job_stops_early_and_keeps_its_best_epoch(client: TestClient, env: Env) -> None:
    noisy_cifar(env)
    body = {
        "epochs": 40,
        "batch_size": 16,
        "optimizer": "adam",
        "learning_rate": 0.003,
        "log_every": 25,
        "seed": 4,
        "early_stopping_patience": 2,
    }
    job = client.post("/jobs", json=body).json()
    assert job["config"]["validation_fraction"] == 0.1  # the default with a patience
    assert Worker(env.settings()).run_once()
    finished = client.get(f"/jobs/{job['id']}").json()
    metrics = client.get(f"/jobs/{job['id']}/metrics").json()
    assert finished["status"] == "succeeded", finished["error"]

    epochs = metrics["epochs"]
    losses = [e["validation_loss"] for e in epochs]
    best = int(np.argmin(losses)) + 1
    assert metrics["best_epoch"] == best
    assert len(epochs) == best + 2 < 40
    assert all(0 <= e["validation_accuracy"] <= 1 for e in epochs)
    # 360 images train (10% of each class held out): 23 steps an epoch.
    assert finished["progress"]["steps_per_epoch"] == 23
    # The saved model is the best epoch's: the job's test results are that epoch's.
    assert metrics["test_accuracy"] == epochs[best - 1]["test_accuracy"]


def test_early_stopping_options_are_checked(client: TestClient) -> None:
    for body, message in (
        (
            {"early_stopping_patience": 2, "cpu_processes": 2},
            "early_stopping_patience 2 cannot go with cpu_processes 2: early stopping is not "
            "supported yet for a job trained by several processes",
        ),
        (
            {"validation_fraction": 0.6},
            "validation_fraction: Input should be less than or equal to 0.5",
        ),
        (
            {"early_stopping_patience": 0},
            "early_stopping_patience: Input should be greater than or equal to 1",
        ),
    ):
        response = client.post("/jobs", json=body)
        assert response.status_code == 422, body
        assert message in response.json()["detail"], response.json()
    kept = client.post("/jobs", json={"validation_fraction": 0.25}).json()["config"]
    assert (kept["validation_fraction"], kept["early_stopping_patience"]) == (0.25, None)
