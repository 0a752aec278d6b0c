"""Networks through the real service: a ResNet-18 job, and a fast_cnn one with the fast94
recipe, run by a worker process, registered and served; then the same job's worker killed with
SIGKILL in the middle of an epoch, and its successor ending exactly as the uninterrupted run."""

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.api.test_architectures import NETWORKS
from tests.api.test_exports import png
from tests.conftest import Env, synthetic_split
from tests.e2e.conftest import Service
from tests.e2e.resume import kill_mid_epoch_and_resume
from tests.e2e.test_chaos import run_to_end

# A network's resume is its checkpoint's: the claim and lease it rides on are the chaos test's,
# which runs against each database.
pytestmark = [pytest.mark.e2e, pytest.mark.database("sqlite")]

# 64 images in batches of 8: 8 steps an epoch, each a fraction of a second on a CPU.
SMALL_JOB = {
    "epochs": 1,
    "batch_size": 8,
    "max_train_samples": 64,
    "max_test_samples": 20,
    "log_every": 2,
    "seed": 7,
    "device": "cpu",
}
STEPS_PER_EPOCH = 8
EARLY_IN_EPOCH_ONE = re.compile(r"^epoch0001-step0000000[1-5]-attempt1\.pt$")
BEFORE_EPOCH_END = re.compile(r"^epoch0001-step0000000[1-7]-attempt1\.pt$")


# fast94: one epoch of SMALL_JOB's; tests/workers/test_fast94.py resumes into a second.
@NETWORKS
def test_a_network_killed_mid_epoch_resumes_to_the_uninterrupted_run(
    env: Env, service: Service, synthetic_cifar: Path, network: dict[str, object]
) -> None:
    config = {**SMALL_JOB, **network}
    service.overrides = {
        "TRAINSERVE_LEASE_SECONDS": "1.5",
        "TRAINSERVE_HEARTBEAT_SECONDS": "0.2",
        "TRAINSERVE_CHECKPOINT_SECONDS": "0.1",  # about one checkpoint a step
    }
    service.start_api()
    client = service.client()

    reference_worker = service.start_worker("reference")
    reference_id = client.post("/jobs", json=config).json()["id"]
    reference: dict[str, Any] = run_to_end(client, reference_id)
    assert reference["status"] == "succeeded", reference["error"]
    assert reference["progress"]["steps_per_epoch"] == STEPS_PER_EPOCH
    reference_metrics = client.get(f"/jobs/{reference_id}/metrics").json()
    reference_worker.stop()

    image = np.ascontiguousarray(synthetic_split(1, seed=5)[0][0].transpose(1, 2, 0))
    answer = client.post("/predict", files={"file": ("x.png", png(image))})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["model"], answer.json()["version"]) == ("cifar10", 1)
    assert answer.json()["job_id"] == reference_id

    kill_mid_epoch_and_resume(
        service, client, config, reference_metrics, EARLY_IN_EPOCH_ONE, BEFORE_EPOCH_END
    )
