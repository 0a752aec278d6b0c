"""A worker writing to a real, full filesystem: a small tmpfs mounted as ARTIFACTS_DIR."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.db import session_scope
from app.jobs.config import JobConfig, JobFields
from app.jobs.transitions import create_job
from app.models import Job, JobStatus
from tests.conftest import Env, small_disk
from workers.worker import Worker

# One checkpoint of the tutorial CNN (weights and SGD momentum) is about 500 KB, so the first
# fits and the second does not.
TMPFS_SIZE = "700k"


@pytest.fixture
def small_artifacts_disk(migrated_env: Env) -> Iterator[Path]:
    with small_disk(migrated_env.artifacts_dir, TMPFS_SIZE) as mount_point:
        yield mount_point


def test_a_full_disk_fails_the_job_and_frees_its_checkpoints(
    migrated_env: Env, synthetic_cifar: Path, small_artifacts_disk: Path
) -> None:
    config = {**JobFields().model_dump(), "epochs": 3, "seed": 1, "log_every": 50, "device": "cpu"}
    with session_scope(write=True) as session:
        job_id = create_job(session, JobConfig.model_validate(config)).id

    assert Worker(migrated_env.settings()).run_once()

    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert job.status == JobStatus.FAILED
        assert job.error is not None and job.error.startswith("the disk is full")
        assert "No space left on device" in job.error
        assert [e.epoch for e in job.epoch_results] == [1, 2]
        # A failed job is never resumed (its retry starts over): it records no checkpoint, and
        # the one that fitted is removed, giving the disk its space back.
        assert (job.checkpoint_key, job.previous_checkpoint_key) == (None, None)
    assert not (small_artifacts_disk / "jobs" / str(job_id) / "checkpoints").exists()
