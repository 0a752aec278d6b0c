"""A fine-tuning job whose worker is killed with SIGKILL in the middle of an epoch: its successor
resumes from the last complete checkpoint (not from the parent's weights again) and ends exactly
as the uninterrupted fine-tuning run, its two learning rates included."""

import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Env
from tests.e2e.conftest import Service
from tests.e2e.resume import kill_mid_epoch_and_resume
from tests.e2e.test_chaos import run_to_end

pytestmark = [pytest.mark.e2e, pytest.mark.database("sqlite")]

PARENT = {"epochs": 1, "batch_size": 16, "learning_rate": 0.01, "seed": 1, "device": "cpu"}
# 400 training images in batches of 4: 100 steps an epoch.
FINE_TUNING = {
    "init_from": {"model": "cifar10", "version": 1},
    "epochs": 2,
    "batch_size": 4,
    "learning_rate": 0.005,
    "backbone_learning_rate": 0.0005,
    "log_every": 10,
    "seed": 7,
    "device": "cpu",
}
MID_EPOCH = re.compile(r"^epoch000[12]-step000000(0[1-9]|[1-9]\d)-attempt1\.pt$")


def test_a_fine_tuning_job_killed_mid_epoch_resumes_to_the_uninterrupted_run(
    env: Env, service: Service, synthetic_cifar: Path
) -> None:
    service.overrides = {
        "TRAINSERVE_LEASE_SECONDS": "1.5",
        "TRAINSERVE_HEARTBEAT_SECONDS": "0.2",
        "TRAINSERVE_CHECKPOINT_SECONDS": "0.1",
        # Holds every checkpoint write open for 0.3 s: a few checkpoints an epoch.
        "TRAINSERVE_FAILPOINT_CHECKPOINT_PAUSE_SECONDS": "0.3",
    }
    service.start_api()
    client = service.client()
    worker = service.start_worker("first")
    parent = run_to_end(client, client.post("/jobs", json=PARENT).json()["id"])
    assert parent["status"] == "succeeded", worker.log()

    reference_id = client.post("/jobs", json=FINE_TUNING).json()["id"]
    reference: dict[str, Any] = run_to_end(client, reference_id)
    assert reference["status"] == "succeeded", worker.log()
    assert reference["config"]["init_from"]["version"] == 1
    reference_metrics = client.get(f"/jobs/{reference_id}/metrics").json()
    worker.stop()

    job_id = kill_mid_epoch_and_resume(
        service, client, FINE_TUNING, reference_metrics, MID_EPOCH, MID_EPOCH
    )
    version = client.get("/models/cifar10/versions/3").json()
    assert (version["lineage"]["job_id"], version["lineage"]["parent"]["version"]) == (job_id, 1)
