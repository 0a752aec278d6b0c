"""GET /workers and why a queued job waits: what live workers offer decides what can run."""

import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import torch
from fastapi.testclient import TestClient
from sqlalchemy import delete, update

from app.cpus import usable_cpus
from app.db import session_scope, utcnow
from app.jobs.worker_registry import Gpu, WorkerOffer, register_worker
from app.models import WorkerRecord
from tests.conftest import Env
from workers.worker import Worker

CPU_BOX = WorkerOffer(hostname="cpu-box", pid=11, cpus=2, torch_version="2.14.1")
ONE_GPU_BOX = WorkerOffer(
    hostname="gpu-box", pid=12, cpus=16, torch_version="2.14.1", gpus=(Gpu(0, "H200", 143771),)
)
NO_WORKER = "no worker is running: start one with `trainserve worker`"


def register(worker_id: str, offer: WorkerOffer) -> None:
    with session_scope(write=True) as session:
        register_worker(session, worker_id, offer)


def age(worker_id: str, seconds: float) -> None:
    with session_scope(write=True) as session:
        session.execute(
            update(WorkerRecord)
            .where(WorkerRecord.id == worker_id)
            .values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
        )


def waiting(client: TestClient, job_id: int) -> str | None:
    reason: str | None = client.get(f"/jobs/{job_id}").json()["waiting_reason"]
    return reason


def eventually(check: Callable[[], bool], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_queued_job_says_why_no_live_worker_can_run_it(client: TestClient) -> None:
    submitted = client.post("/jobs", json={"device": "cuda"}).json()
    assert submitted["waiting_reason"] == NO_WORKER
    cuda = submitted["id"]
    two_gpus = client.post("/jobs", json={"gpus": 2}).json()["id"]
    anywhere = client.post("/jobs", json={}).json()["id"]
    assert [waiting(client, job) for job in (cuda, two_gpus, anywhere)] == [NO_WORKER] * 3

    register("cpu-box", CPU_BOX)
    assert waiting(client, cuda) == (
        "the job needs 1 GPU on one worker and the live workers offer no GPU; "
        "it waits for a worker that has them"
    )
    assert waiting(client, anywhere) is None

    register("gpu-box", ONE_GPU_BOX)
    assert waiting(client, cuda) is None
    assert waiting(client, two_gpus) == (
        "the job needs 2 GPUs on one worker and the live workers offer at most 1 GPU; "
        "it waits for a worker that has them"
    )
    listed = {job["id"]: job["waiting_reason"] for job in client.get("/jobs").json()["items"]}
    assert listed == {cuda: None, two_gpus: waiting(client, two_gpus), anywhere: None}

    # A worker whose heartbeat is older than a lease (5 s here) no longer counts.
    age("gpu-box", 6)
    assert waiting(client, cuda) is not None and waiting(client, anywhere) is None
    age("cpu-box", 6)
    assert waiting(client, anywhere) == NO_WORKER
    # Only queued jobs wait.
    assert client.post(f"/jobs/{anywhere}/cancel").json()["waiting_reason"] is None


def test_get_workers_lists_live_workers_with_what_they_offer(client: TestClient) -> None:
    register("gpu-box", ONE_GPU_BOX)
    register("gone-box", CPU_BOX)
    age("gone-box", 6)
    (listed,) = client.get("/workers").json()["items"]
    assert {k: v for k, v in listed.items() if not k.endswith("_at")} == {
        "id": "gpu-box",
        "hostname": "gpu-box",
        "pid": 12,
        "cpus": 16,
        "gpus": [{"index": 0, "name": "H200", "memory_mb": 143771}],
        "torch_version": "2.14.1",
        "current_job_id": None,
    }
    assert client.get("/workers").json()["total"] == 1


def test_a_real_worker_registers_beats_shows_its_job_and_leaves(
    client: TestClient, env: Env, synthetic_cifar: Path
) -> None:
    worker = Worker(env.settings(), worker_id="real-worker")
    thread = threading.Thread(target=worker.run_forever)
    thread.start()
    try:

        def listed() -> list[dict[str, object]]:
            items: list[dict[str, object]] = client.get("/workers").json()["items"]
            return items

        eventually(lambda: len(listed()) == 1)
        (me,) = listed()
        assert (me["id"], me["cpus"], me["torch_version"]) == (
            "real-worker",
            usable_cpus(),
            torch.__version__,
        )
        assert me["gpus"] == [] or torch.cuda.is_available()
        # A long job: the worker says it runs it.
        job_id = client.post("/jobs", json={"epochs": 1000, "device": "cpu", "seed": 1}).json()[
            "id"
        ]
        eventually(lambda: listed()[0]["current_job_id"] == job_id)
        first_beat = listed()[0]["heartbeat_at"]
        eventually(lambda: listed()[0]["heartbeat_at"] != first_beat)  # beats while training
        # Its record removed behind its back (a cleanup elsewhere): the next beat restores it.
        with session_scope(write=True) as session:
            session.execute(delete(WorkerRecord))
        eventually(lambda: len(listed()) == 1)
        client.post(f"/jobs/{job_id}/cancel")
        eventually(lambda: listed()[0]["current_job_id"] is None)
    finally:
        worker.request_stop()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert listed() == []  # a worker that stops says goodbye
