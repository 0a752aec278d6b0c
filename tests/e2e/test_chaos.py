"""Chaos: workers killed with SIGKILL at random moments, some in the middle of a checkpoint write.

Every job must still succeed, resumed from the last checkpoint its row recorded when its worker
died, and end exactly as a run that was never interrupted.
"""

import random
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.db import session_scope
from app.models import Job
from tests.conftest import Env
from tests.databases import backend
from tests.e2e.conftest import Process, Service, wait_for

pytestmark = pytest.mark.e2e

# (kills, of which during a checkpoint write) per database: the whole run against SQLite, and
# half of it against PostgreSQL, whose pass checks the same claims and leases on its own locking
# (the checkpoint files and the exact resume are the same either way).
KILLS = {"sqlite": (12, 4), "postgresql": (6, 2)}
MAX_TRIALS = 20
CONFIG = {"epochs": 3, "batch_size": 4, "log_every": 10, "seed": 7, "device": "cpu"}


def checkpoint_dir(env: Env, job_id: int) -> Path:
    return env.artifacts_dir / "jobs" / str(job_id) / "checkpoints"


def recorded_checkpoint(job_id: int) -> str | None:
    """The file name of the checkpoint the job's row records: the one a resume loads."""
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        return None if job.checkpoint_key is None else Path(job.checkpoint_key).name


def temporaries(folder: Path) -> list[Path]:
    return list(folder.glob(".*.tmp")) if folder.is_dir() else []


def run_to_end(client: httpx.Client, job_id: int) -> dict[str, object]:
    job = wait_for(
        lambda: (
            (j := client.get(f"/jobs/{job_id}").json())["status"]
            in ("succeeded", "failed", "cancelled")
            and j
        ),
        120,
        f"job {job_id} never finished",
    )
    assert isinstance(job, dict)
    return job


def assert_same_run(
    client: httpx.Client,
    job_id: int,
    reference: dict[str, Any],
    rel: float | None = None,
    abs: float | None = None,
) -> None:
    """The job's metrics are the reference run's: loss points (within rel / abs) and results."""
    metrics = client.get(f"/jobs/{job_id}/metrics").json()
    assert [(p["epoch"], p["step"]) for p in metrics["loss_history"]] == [
        (p["epoch"], p["step"]) for p in reference["loss_history"]
    ]
    assert [p["loss"] for p in metrics["loss_history"]] == pytest.approx(
        [p["loss"] for p in reference["loss_history"]], rel=rel, abs=abs
    )
    assert metrics["test_accuracy"] == reference["test_accuracy"]
    assert metrics["confusion_matrix"] == reference["confusion_matrix"]


def kill_during_checkpoint_write(worker: Process, folder: Path) -> bool:
    """SIGKILL the worker while a checkpoint's temporary file is open; True if caught so."""
    deadline = time.monotonic() + 30
    while not temporaries(folder):
        if worker.popen.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    worker.kill()
    return bool(temporaries(folder))  # still there: the write never finished


def test_sigkill_at_random_moments_loses_nothing(
    env: Env, service: Service, synthetic_cifar: Path, pytestconfig: pytest.Config
) -> None:
    kills_wanted, kills_during_write_wanted = KILLS[backend(pytestconfig)]
    service.overrides = {
        "TRAINSERVE_LEASE_SECONDS": "1.5",
        "TRAINSERVE_HEARTBEAT_SECONDS": "0.2",
        "TRAINSERVE_MAX_ATTEMPTS": "100",
        "TRAINSERVE_CHECKPOINT_SECONDS": "0.25",
        # Holds every checkpoint write open for 0.3 s, so that kills can land inside one.
        "TRAINSERVE_FAILPOINT_CHECKPOINT_PAUSE_SECONDS": "0.3",
    }
    service.start_api()
    client = service.client()
    chance = random.Random(20261122)

    reference_worker = service.start_worker("reference")
    reference_id = client.post("/jobs", json=CONFIG).json()["id"]
    reference = run_to_end(client, reference_id)
    assert reference["status"] == "succeeded"
    reference_metrics = client.get(f"/jobs/{reference_id}/metrics").json()
    reference_worker.stop()

    kills = mid_write_kills = resumes = trials = 0
    while kills < kills_wanted:
        trials += 1
        assert trials <= MAX_TRIALS, f"only {kills} kills landed in {MAX_TRIALS} trials"
        job_id = client.post("/jobs", json=CONFIG).json()["id"]
        folder = checkpoint_dir(env, job_id)
        victim = service.start_worker(f"victim{trials}")
        victim.wait_for_log(f"job {job_id}: training on")
        if mid_write_kills < kills_during_write_wanted:
            caught = kill_during_checkpoint_write(victim, folder)
            mid_write_kills += caught
        else:
            time.sleep(chance.uniform(0.2, 2.0))
            victim.kill()
        if client.get(f"/jobs/{job_id}").json()["status"] != "running":
            continue  # it finished before the kill landed; not a kill
        kills += 1
        last_recorded = recorded_checkpoint(job_id)

        successor = service.start_worker(f"successor{trials}")
        job = run_to_end(client, job_id)
        successor.stop()

        assert job["status"] == "succeeded", successor.log()
        assert job["attempts"] == 2
        resumed = re.search(rf"job {job_id}: resuming from checkpoint (\S+) ", successor.log())
        if last_recorded is not None:
            assert resumed is not None and resumed.group(1) == last_recorded
            resumes += 1
        else:
            assert resumed is None  # killed before its first checkpoint: started over
        assert_same_run(client, job_id, reference_metrics, abs=1e-6)
        assert not folder.exists()  # checkpoints (and stale temporaries) cleared on success

    jobs = client.get("/jobs", params={"limit": 1000}).json()["items"]
    assert [j for j in jobs if j["status"] != "succeeded"] == []  # none lost, none left running
    assert mid_write_kills == kills_during_write_wanted
    print(
        f"\nchaos: {trials} trials, {kills} kills ({mid_write_kills} during a checkpoint write), "
        f"{resumes} resumed from a checkpoint, {kills - resumes} restarted before any, 0 lost"
    )
