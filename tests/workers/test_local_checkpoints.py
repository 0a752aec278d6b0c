"""A job's checkpoints in the local folder: one damaged (cut short, overwritten, emptied) is
refused by its sha256, and the job resumes from the one before, kept for that; a job in flight
during the upgrade to recorded checkpoints resumes from the newest file under the old names
that loads; half-written files a killed worker left are removed."""

import logging
from pathlib import Path

import pytest
import torch

from app.db import session_scope
from app.jobs.transitions import Lease
from app.ml.checkpoints import write_torch_file
from app.models import Job, JobStatus
from app.settings import get_settings
from app.storage.local import LocalFolder
from tests.conftest import Env
from tests.workers.test_worker import load, loss_point_count, queue, registered, stop_when
from workers.job_checkpoints import JobCheckpoints
from workers.worker import Worker

JOB_ID = 7
DAMAGES = ["truncated", "garbage", "empty"]


def checkpoints_of(store: LocalFolder) -> JobCheckpoints:
    return JobCheckpoints(store, Lease(JOB_ID, "w1", 1))


def snapshot(value: float) -> dict[str, object]:
    return {"epoch": 1, "step": int(value), "w": torch.full((100,), value)}


def damage(path: Path, how: str) -> None:
    data = path.read_bytes()
    damaged = {"truncated": data[: len(data) // 2], "garbage": b"garbage", "empty": b""}[how]
    path.write_bytes(damaged)


@pytest.mark.parametrize("how", DAMAGES)
def test_a_damaged_recorded_checkpoint_is_refused_by_its_sha256(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    store = LocalFolder(tmp_path)
    checkpoints = checkpoints_of(store)
    published = checkpoints.publish(snapshot(10), 1, 10)
    loaded = checkpoints.load(published.key, published.sha256)
    assert loaded is not None and loaded["w"][0] == 10

    damage(store.path(published.key), how)
    caplog.set_level(logging.WARNING, logger="trainserve.worker")
    assert checkpoints.load(published.key, published.sha256) is None
    assert (
        f"job {JOB_ID}: its checkpoint cannot be used (artifact store {tmp_path}: "
        f"{published.key} is damaged: its sha256 is "
    ) in caplog.text
    assert f"not the {published.sha256} recorded when it was written; it was not used); " in (
        caplog.text
    )


def write_unrecorded(store: LocalFolder, name: str, value: float) -> Path:
    """A checkpoint as a worker before the upgrade wrote it: its position as its name."""
    path = store.path(f"jobs/{JOB_ID}/checkpoints/{name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_torch_file(snapshot(value), path)
    return path


@pytest.mark.parametrize("how", DAMAGES)
def test_an_unrecorded_checkpoint_that_does_not_load_falls_back_to_the_one_before(
    tmp_path: Path, how: str
) -> None:
    store = LocalFolder(tmp_path)
    write_unrecorded(store, "epoch0001-step00000010.pt", 10)
    damage(write_unrecorded(store, "epoch0001-step00000020.pt", 20), how)
    loaded = checkpoints_of(store).load_unrecorded()
    assert loaded is not None
    key, state = loaded
    assert key == f"jobs/{JOB_ID}/checkpoints/epoch0001-step00000010.pt"
    assert state["w"][0] == 10


def test_no_unrecorded_checkpoint_that_loads_gives_none(tmp_path: Path) -> None:
    store = LocalFolder(tmp_path)
    assert checkpoints_of(store).load_unrecorded() is None  # no folder
    write_unrecorded(store, "epoch0001-step00000010.pt", 10).write_bytes(b"x")
    # A recorded one (named by its attempt) is not a leftover of the old names.
    checkpoints_of(store).publish(snapshot(30), 1, 30)
    assert checkpoints_of(store).load_unrecorded() is None


def test_half_written_checkpoints_are_removed(tmp_path: Path) -> None:
    store = LocalFolder(tmp_path)
    checkpoints = checkpoints_of(store)
    kept = checkpoints.publish(snapshot(10), 1, 10)
    folder = store.path(kept.key).parent
    (folder / ".epoch0001-step00000020-attempt1.pt.abc12345.tmp").write_bytes(b"half")
    checkpoints.remove_stale_temporaries()
    assert [p.name for p in folder.iterdir()] == ["epoch0001-step00000010-attempt1.pt"]


def test_a_job_in_flight_during_the_upgrade_resumes_from_its_newest_file(
    migrated_env: Env, synthetic_cifar: Path, caplog: pytest.LogCaptureFixture
) -> None:
    job_id = queue(epochs=2, log_every=5, seed=4, max_train_samples=80, max_test_samples=20)
    first = registered(Worker(migrated_env.settings(), worker_id="w1"))
    watcher = stop_when(first, lambda: loss_point_count(job_id) >= 3)
    first.run_once()
    watcher.join()
    # As the old worker left it: the file named by its position, no key on the row.
    with session_scope(write=True) as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == JobStatus.QUEUED and job.checkpoint_key
        recorded = migrated_env.artifacts_dir / job.checkpoint_key
        job.checkpoint_key = job.checkpoint_sha256 = None
        job.previous_checkpoint_key = job.previous_checkpoint_sha256 = None
    old_name = recorded.name.replace("-attempt1", "")
    recorded.rename(recorded.with_name(old_name))

    caplog.set_level(logging.INFO, logger="trainserve.worker")
    assert registered(Worker(migrated_env.settings(), worker_id="w2")).run_once()
    assert f"job {job_id}: resuming from checkpoint {old_name} (epoch " in caplog.text
    job = load(job_id)
    assert (job.status, job.worker_id) == (JobStatus.SUCCEEDED, "w2")
    assert [(p.epoch, p.step) for p in job.loss_points] == [
        (epoch, step) for epoch in (1, 2) for step in (5, 10, 15, 20)
    ]
    assert not recorded.parent.exists()  # the old file went with the others


def test_a_damaged_newest_checkpoint_falls_back_to_the_one_before(
    migrated_env: Env,
    synthetic_cifar: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRAINSERVE_CHECKPOINT_SECONDS", "0.001")  # one at every step
    get_settings.cache_clear()
    job_id = queue(epochs=2, log_every=5, seed=4, max_train_samples=80, max_test_samples=20)
    first = registered(Worker(migrated_env.settings(), worker_id="w1"))
    watcher = stop_when(first, lambda: loss_point_count(job_id) >= 3)
    first.run_once()
    watcher.join()
    job = load(job_id)
    newest, previous = job.checkpoint_key, job.previous_checkpoint_key
    assert newest is not None and previous is not None and newest != previous
    folder = (migrated_env.artifacts_dir / newest).parent
    # The newest and the one before, and no other.
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [Path(newest).name, Path(previous).name]
    )
    damage(migrated_env.artifacts_dir / newest, "garbage")

    caplog.set_level(logging.INFO, logger="trainserve.worker")
    second = registered(Worker(migrated_env.settings(), worker_id="w2"))
    recorded_next: list[tuple[str | None, str | None]] = []

    def changed() -> bool:
        job = load(job_id)
        if job.checkpoint_key == newest:
            return False
        recorded_next.append((job.checkpoint_key, job.previous_checkpoint_key))
        return True

    watcher = stop_when(second, changed)
    second.run_once()
    watcher.join()
    assert f"job {job_id}: resuming from checkpoint {Path(previous).name} (epoch " in caplog.text
    # Before it trains, the one it resumed from is the newest, and the one that does not load is
    # recorded no more: else the next checkpoint would keep that one as the fallback.
    assert recorded_next == [(previous, None)]

    assert registered(Worker(migrated_env.settings(), worker_id="w3")).run_once()
    job = load(job_id)
    assert (job.status, job.checkpoint_key, job.previous_checkpoint_key) == (
        JobStatus.SUCCEEDED,
        None,
        None,
    )
    assert [(p.epoch, p.step) for p in job.loss_points] == [
        (epoch, step) for epoch in (1, 2) for step in (5, 10, 15, 20)
    ]
