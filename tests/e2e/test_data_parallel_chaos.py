"""A two-process job survives its worker's death: SIGKILL the worker mid-job, and the other rank
goes with it; a new worker resumes from the last checkpoint and ends as an uninterrupted run."""

import re
from pathlib import Path

import pytest

from tests.conftest import Env
from tests.e2e.conftest import Service, wait_for
from tests.e2e.test_chaos import assert_same_run, recorded_checkpoint, run_to_end

# Once, on SQLite: the processes' agreement does not depend on the database (test_chaos
# covers claims on both).
pytestmark = [pytest.mark.e2e, pytest.mark.database("sqlite")]

CONFIG = {"epochs": 2, "batch_size": 6, "log_every": 10, "seed": 5, "cpu_processes": 2}


def children(pid: int) -> set[int]:
    """Processes whose parent is `pid`, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid:
            found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_killed_two_process_job_resumes_on_a_new_worker(
    env: Env, service: Service, synthetic_cifar: Path
) -> None:
    service.overrides = {
        "TRAINSERVE_LEASE_SECONDS": "2",
        "TRAINSERVE_HEARTBEAT_SECONDS": "0.3",
        "TRAINSERVE_CHECKPOINT_SECONDS": "0.5",
    }
    service.start_api()
    client = service.client()

    reference_worker = service.start_worker("reference")
    reference_id = client.post("/jobs", json=CONFIG).json()["id"]
    assert run_to_end(client, reference_id)["status"] == "succeeded", reference_worker.log()
    reference = client.get(f"/jobs/{reference_id}/metrics").json()
    reference_worker.stop()

    job_id = client.post("/jobs", json=CONFIG).json()["id"]
    victim = service.start_worker("victim")
    victim.wait_for_log(f"job {job_id}: checkpoint epoch0001")
    ranks = children(victim.popen.pid)
    assert ranks, "the worker runs no other rank"
    victim.kill()
    # The other rank dies with the worker rather than waiting for it.
    wait_for(lambda: not any(alive(pid) for pid in ranks), 30, f"ranks {ranks} outlived it")
    last_recorded = recorded_checkpoint(job_id)
    assert last_recorded is not None

    successor = service.start_worker("successor")
    job = run_to_end(client, job_id)
    assert job["status"] == "succeeded", successor.log()
    assert job["attempts"] == 2
    resumed = re.search(rf"job {job_id}: resuming from checkpoint (\S+) ", successor.log())
    assert resumed is not None and resumed.group(1) == last_recorded
    assert_same_run(client, job_id, reference, rel=1e-5)
