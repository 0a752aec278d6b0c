"""A job's worker killed with SIGKILL in the middle of an epoch, and its successor's run checked
against the uninterrupted one: shared by the tests that resume each kind of job."""

import re
from typing import Any

import httpx

from tests.e2e.conftest import Service, wait_for
from tests.e2e.test_chaos import assert_same_run, recorded_checkpoint, run_to_end


def kill_mid_epoch_and_resume(
    service: Service,
    client: httpx.Client,
    config: dict[str, Any],
    reference_metrics: dict[str, Any],
    kill_after: re.Pattern[str],
    mid_epoch: re.Pattern[str],
) -> int:
    """Submit `config`, SIGKILL its worker once the job's row records a checkpoint named like
    `kill_after` (the one a resume loads), check that the one it records at the kill is
    `mid_epoch`, and that a new worker resumes from it and
    ends with the reference run's losses (1e-6) and results. Answers the job's id."""
    job_id: int = client.post("/jobs", json=config).json()["id"]
    victim = service.start_worker("victim")
    wait_for(
        lambda: kill_after.match(recorded_checkpoint(job_id) or "") is not None,
        120,
        f"no checkpoint like {kill_after.pattern}:\n{victim.log()}",
        interval_s=0.01,
    )
    victim.kill()
    assert client.get(f"/jobs/{job_id}").json()["status"] == "running"
    last_complete = recorded_checkpoint(job_id)
    assert last_complete is not None and mid_epoch.match(last_complete), last_complete

    successor = service.start_worker("successor")
    job = run_to_end(client, job_id)
    successor.stop()
    assert job["status"] == "succeeded", successor.log()
    assert job["attempts"] == 2
    assert f"job {job_id}: resuming from checkpoint {last_complete} " in successor.log()
    assert_same_run(client, job_id, reference_metrics, abs=1e-6)
    return job_id
