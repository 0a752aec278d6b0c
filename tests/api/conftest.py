from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import get_settings
from tests.conftest import Env
from workers.worker import Worker

ADMIN = "admin-key-7f3a9c"
PREDICT = "predict-key-51be02"


@pytest.fixture
def client(env: Env) -> Iterator[TestClient]:
    """The app in-process, its lifespan (and so the migrations) run on a fresh SQLite file."""
    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture
def keyed(env: Env, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    """The app with API keys on: ADMIN may do anything, PREDICT read and predict."""
    monkeypatch.setenv("TRAINSERVE_ADMIN_KEY", ADMIN)
    monkeypatch.setenv("TRAINSERVE_PREDICT_KEY", PREDICT)
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        yield client


def refusal(response: httpx.Response) -> tuple[int, str]:
    """An error answer's status and its detail."""
    return response.status_code, response.json()["detail"]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def train_job(client: TestClient, env: Env, synthetic_cifar: Path) -> "TrainJob":
    return TrainJob(client, env)


class TrainJob:
    """Submits a job over HTTP and runs it with a real worker in this process."""

    def __init__(self, client: TestClient, env: Env) -> None:
        self.client, self.env = client, env

    def __call__(self, **config: object) -> int:
        body = {"epochs": 1, "batch_size": 16, "learning_rate": 0.01, "log_every": 5, "seed": 3}
        response = self.client.post("/jobs", json={**body, **config})
        assert response.status_code == 202, response.text
        Worker(self.env.settings()).run_once()
        job_id: int = response.json()["id"]
        return job_id
