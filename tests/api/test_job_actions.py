"""Cancel, retry and idempotent submission."""

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi.testclient import TestClient

from app.db import session_scope
from app.jobs.transitions import claim_next_job
from app.models import Job, JobStatus
from tests.api.conftest import TrainJob
from tests.conftest import Env
from workers.worker import Worker


def test_cancel_a_queued_job_at_once(client: TestClient) -> None:
    job_id = client.post("/jobs").json()["id"]
    response = client.post(f"/jobs/{job_id}/cancel")
    assert response.status_code == 200
    job = response.json()
    assert job["status"] == "cancelled" and job["finished_at"] is not None
    # A worker never picks it up.
    with session_scope(write=True) as session:
        assert claim_next_job(session, "w", 30) is None


def test_cancel_a_running_job_asks_its_worker(client: TestClient) -> None:
    job_id = client.post("/jobs").json()["id"]
    with session_scope(write=True) as session:
        claim_next_job(session, "w", 30)
    response = client.post(f"/jobs/{job_id}/cancel")
    assert response.status_code == 202
    assert response.json()["status"] == "running"
    assert response.json()["cancel_requested"] is True


def test_a_running_job_ends_cancelled_within_seconds(
    client: TestClient, env: Env, synthetic_cifar: Path
) -> None:
    job_id = client.post("/jobs", json={"epochs": 500, "log_every": 10}).json()["id"]
    worker = Worker(env.settings())
    runner = threading.Thread(target=worker.run_once)
    runner.start()
    while client.get(f"/jobs/{job_id}/metrics").json()["loss_history"] == []:
        assert runner.is_alive()
    assert client.post(f"/jobs/{job_id}/cancel").status_code == 202
    runner.join(timeout=10)  # the heartbeat (0.5 s here) carries the request to the loop
    assert not runner.is_alive()
    job = client.get(f"/jobs/{job_id}").json()
    assert job["status"] == "cancelled" and job["progress"]["epoch"] < 500
    assert not (env.artifacts_dir / f"jobs/{job_id}/checkpoints").exists()


def test_cancel_a_finished_job_is_409(client: TestClient, train_job: TrainJob) -> None:
    job_id = train_job(max_train_samples=20, max_test_samples=10)
    response = client.post(f"/jobs/{job_id}/cancel")
    assert response.status_code == 409
    assert response.json() == {
        "detail": f"job {job_id} has already finished (its status is succeeded)"
    }
    cancelled = client.post("/jobs").json()["id"]
    client.post(f"/jobs/{cancelled}/cancel")
    assert client.post(f"/jobs/{cancelled}/cancel").status_code == 409


def test_cancel_unknown_job_is_404(client: TestClient) -> None:
    assert client.post("/jobs/41/cancel").json() == {"detail": "job 41 not found"}
    assert client.post("/jobs/41/cancel").status_code == 404


def test_retry_a_cancelled_job(client: TestClient) -> None:
    original = client.post("/jobs", json={"epochs": 3, "seed": 5}).json()
    client.post(f"/jobs/{original['id']}/cancel")
    response = client.post(f"/jobs/{original['id']}/retry")
    assert response.status_code == 202
    retry = response.json()
    assert retry["id"] != original["id"]
    assert retry["retry_of"] == original["id"]
    assert retry["config"] == original["config"]
    assert retry["status"] == "queued" and retry["attempts"] == 0
    assert response.headers["location"] == f"/jobs/{retry['id']}"


def test_retry_a_failed_job(client: TestClient, env: Env) -> None:
    job_id = client.post("/jobs", json={"epochs": 1}).json()["id"]
    Worker(env.settings()).run_once()  # no dataset: it fails
    assert client.get(f"/jobs/{job_id}").json()["status"] == "failed"
    assert client.post(f"/jobs/{job_id}/retry").json()["retry_of"] == job_id


def test_retry_of_a_queued_or_succeeded_job_is_409(client: TestClient, train_job: TrainJob) -> None:
    done = train_job(max_train_samples=20, max_test_samples=10)
    response = client.post(f"/jobs/{done}/retry")
    assert response.status_code == 409
    assert response.json() == {
        "detail": f"job {done} is succeeded; only failed or cancelled jobs can be retried"
    }
    queued = client.post("/jobs").json()["id"]
    assert client.post(f"/jobs/{queued}/retry").status_code == 409
    assert client.post("/jobs/999/retry").status_code == 404


def test_same_idempotency_key_and_body_returns_the_same_job(client: TestClient) -> None:
    headers = {"Idempotency-Key": "nightly-2026-11-22"}
    first = client.post("/jobs", json={"epochs": 3}, headers=headers)
    again = client.post("/jobs", json={"epochs": 3}, headers=headers)
    assert first.status_code == 202 and again.status_code == 200
    assert again.json() == first.json()  # the same job, seed included
    assert client.get("/jobs").json()["total"] == 1


def test_same_idempotency_key_with_another_body_is_409(client: TestClient) -> None:
    headers = {"Idempotency-Key": "k1"}
    job_id = client.post("/jobs", json={"epochs": 3}, headers=headers).json()["id"]
    response = client.post("/jobs", json={"epochs": 4}, headers=headers)
    assert response.status_code == 409
    assert response.json() == {
        "detail": f"Idempotency-Key 'k1' was already used for job {job_id} with a different body"
    }
    other = client.post("/jobs", json={"epochs": 3}, headers={"Idempotency-Key": "k2"})
    assert other.status_code == 202 and other.json()["id"] != job_id


def test_concurrent_requests_with_one_key_make_one_job(client: TestClient) -> None:
    def submit(_: int) -> tuple[int, int]:
        response = client.post("/jobs", json={"epochs": 1}, headers={"Idempotency-Key": "race"})
        return response.status_code, response.json()["id"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(submit, range(16)))
    assert len({job_id for _, job_id in results}) == 1
    assert sorted(status for status, _ in results) == [200] * 15 + [202]


def test_job_json_carries_attempts(client: TestClient, env: Env) -> None:
    job = client.post("/jobs").json()
    assert (job["attempts"], job["max_attempts"], job["retry_of"]) == (0, 3, None)
    assert job["cancel_requested"] is False and job["heartbeat_at"] is None
    with session_scope(write=True) as session:
        claim_next_job(session, "w", 30)
    running = client.get(f"/jobs/{job['id']}").json()
    assert running["attempts"] == 1 and running["heartbeat_at"] is not None
    with session_scope() as session:
        assert session.get(Job, job["id"]).status == JobStatus.RUNNING  # type: ignore[union-attr]
