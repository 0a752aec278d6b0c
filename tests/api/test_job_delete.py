"""DELETE /jobs/{id}: a finished job's rows and files go; never a running job's, never a model
that a registered version serves."""

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db import session_scope
from app.ml.checkpoints import load_model
from app.models import EpochResult, JobEvent, LossPoint
from tests.api.conftest import TrainJob
from tests.api.test_predict import png
from tests.conftest import Env

SMALL = {"max_train_samples": 50, "max_test_samples": 10}


def rows_of(job_id: int) -> int:
    with session_scope() as session:
        return sum(
            session.scalar(select(func.count()).where(table.job_id == job_id)) or 0
            for table in (LossPoint, EpochResult, JobEvent)
        )


def test_a_finished_job_goes_with_its_rows_and_files(
    client: TestClient, train_job: TrainJob, env: Env
) -> None:
    job_id = train_job(**SMALL, register_as=None)
    folder = env.artifacts_dir / "jobs" / str(job_id)
    assert (folder / "model-attempt1.pt").is_file() and rows_of(job_id) > 0
    assert (folder / "test-predictions-attempt1.pt").is_file()
    assert client.delete(f"/jobs/{job_id}").status_code == 204
    assert client.get(f"/jobs/{job_id}").status_code == 404
    assert not folder.exists() and rows_of(job_id) == 0
    assert client.delete(f"/jobs/{job_id}").status_code == 404


def test_a_queued_job_is_not_deleted(client: TestClient) -> None:
    job_id = client.post("/jobs", json={"epochs": 1}).json()["id"]
    response = client.delete(f"/jobs/{job_id}")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"job {job_id} is queued: cancel it first (POST /jobs/{job_id}/cancel)"
    )
    assert client.post(f"/jobs/{job_id}/cancel").status_code == 200
    assert client.delete(f"/jobs/{job_id}").status_code == 204


def test_a_job_whose_model_a_version_serves_is_not_deleted(
    client: TestClient, train_job: TrainJob, env: Env
) -> None:
    job_id = train_job(**SMALL)  # cifar10 v1
    client.post("/models/other/versions", json={"job_id": job_id})
    response = client.delete(f"/jobs/{job_id}")
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"job {job_id}'s model is registered as cifar10 v1, other v1: delete those versions "
        "first (DELETE /models/{name}/versions/{version})"
    )
    assert (env.artifacts_dir / f"jobs/{job_id}/model-attempt1.pt").is_file()
    assert client.delete("/models/other/versions/1").status_code == 204
    client.delete("/models/cifar10/aliases/production")
    assert client.delete("/models/cifar10/versions/1").status_code == 204
    assert client.delete(f"/jobs/{job_id}").status_code == 204


@pytest.mark.database("sqlite")
def test_a_new_job_that_gets_a_deleted_job_s_id_serves_its_own_model(
    client: TestClient, train_job: TrainJob, env: Env
) -> None:
    # SQLite gives the next job the highest id in use plus one: a deleted last job's id again.
    first = train_job(**SMALL, register_as=None, seed=1)
    image = {"file": ("x.png", png())}
    before = client.post("/predict", params={"job_id": first}, files=image).json()
    assert client.delete(f"/jobs/{first}").status_code == 204
    second = train_job(**SMALL, register_as=None, seed=2, learning_rate=0.05)
    assert second == first
    time.sleep(1.1)  # past the lookup's one second
    after = client.post("/predict", params={"job_id": second}, files=image).json()
    saved = load_model(env.artifacts_dir / f"jobs/{second}/model-attempt1.pt")
    assert list(after["probabilities"]) == saved.classes
    assert after["probabilities"] != before["probabilities"]
