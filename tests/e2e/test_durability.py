"""Several real worker processes on one SQLite file; workers killed with SIGKILL."""

import re
import signal
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import Env
from tests.e2e.conftest import Service, wait_for

pytestmark = pytest.mark.e2e

TINY_JOB = {
    "epochs": 1,
    "batch_size": 8,
    "max_train_samples": 40,
    "max_test_samples": 20,
    "log_every": 1,
}


def all_finished(client: httpx.Client, ids: list[int]) -> list[dict[str, object]] | None:
    jobs = client.get("/jobs", params={"limit": 1000}).json()["items"]
    wanted = [job for job in jobs if job["id"] in ids]
    done = all(job["status"] in ("succeeded", "failed", "cancelled") for job in wanted)
    return wanted if done and len(wanted) == len(ids) else None


def test_four_workers_forty_jobs_each_run_exactly_once(
    env: Env, service: Service, synthetic_cifar: Path
) -> None:
    service.start_api()
    workers = [service.start_worker(f"worker{i}") for i in range(4)]
    client = service.client()
    ids = [client.post("/jobs", json={**TINY_JOB, "seed": i}).json()["id"] for i in range(40)]

    jobs = wait_for(lambda: all_finished(client, ids), 300, "the jobs did not all finish")
    assert isinstance(jobs, list)
    assert Counter(job["status"] for job in jobs) == {"succeeded": 40}
    assert all(job["attempts"] == 1 for job in jobs)
    claims = Counter(
        int(match)
        for worker in workers
        for match in re.findall(r"claimed job (\d+) \(attempt", worker.log())
    )
    assert claims == Counter({job_id: 1 for job_id in ids})  # each claimed once, none skipped
    assert sum(1 for worker in workers if "claimed job" in worker.log()) >= 2
    for job_id in ids:
        steps = [p["step"] for p in client.get(f"/jobs/{job_id}/metrics").json()["loss_history"]]
        assert steps == [1, 2, 3, 4, 5]


def test_200_concurrent_submissions_all_succeed(
    env: Env, service: Service, synthetic_cifar: Path
) -> None:
    api = service.start_api()
    service.start_worker("worker0")
    service.start_worker("worker1")  # claiming while the API writes

    def submit(i: int) -> tuple[int, int]:
        with httpx.Client(base_url=service.url, timeout=60) as client:
            response = client.post("/jobs", json={**TINY_JOB, "seed": i})
            return response.status_code, response.json()["id"]

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(submit, range(200)))

    assert [status for status, _ in results] == [202] * 200
    assert len({job_id for _, job_id in results}) == 200
    assert service.client().get("/jobs").json()["total"] == 200
    assert "database is locked" not in api.log()


def test_a_poison_job_fails_after_exactly_max_attempts(
    env: Env, service: Service, synthetic_cifar: Path
) -> None:
    service.overrides = {"TRAINSERVE_LEASE_SECONDS": "1.5", "TRAINSERVE_HEARTBEAT_SECONDS": "0.2"}
    service.start_api()
    client = service.client()
    poison = client.post("/jobs", json={"epochs": 1000, "log_every": 10}).json()["id"]

    # Its worker dies every time it runs it (SIGKILL: no checkpoint, no goodbye).
    def running_attempt() -> int:
        job = client.get(f"/jobs/{poison}").json()
        return int(job["attempts"]) if job["status"] == "running" else 0

    for attempt in (1, 2, 3):
        worker = service.start_worker(f"worker{attempt}")
        wait_for(
            lambda expected=attempt: running_attempt() == expected,  # type: ignore[misc]
            60,
            f"attempt {attempt} never started",
        )
        worker.kill()

    survivor = service.start_worker("survivor")
    job = wait_for(
        lambda: (j := client.get(f"/jobs/{poison}").json())["status"] == "failed" and j,
        30,
        "the poison job was never failed",
    )
    assert isinstance(job, dict)
    assert job["attempts"] == 3 and job["max_attempts"] == 3
    assert "lease expired" in job["error"] and "every one of its attempts" in job["error"]

    # The worker that failed it goes on with other work.
    healthy = client.post("/jobs", json=TINY_JOB).json()["id"]
    done = wait_for(lambda: all_finished(client, [healthy]), 60, "the healthy job never ran")
    assert isinstance(done, list) and done[0]["status"] == "succeeded"
    survivor.popen.send_signal(signal.SIGTERM)
    assert survivor.popen.wait(30) == 0
