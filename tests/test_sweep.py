"""The sweep removes the files no row refers to, once nothing has changed in them for the grace
period, and nothing else: real files on disk, real rows in the migrated database."""

import os
import time
from datetime import datetime
from pathlib import Path

from app.datasets.state import create_dataset
from app.db import session_scope, utcnow
from app.models import Dataset, DatasetStatus, Job, JobStatus, ModelVersion, RegisteredModel
from app.storage.store import Published
from app.sweep import sweep_unreferenced_files
from tests.conftest import Env

HOUR_S = 3600.0


def write(path: Path, size: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    return path


def age(root: Path, seconds: float) -> None:
    """Make every file and folder under `root` look untouched for `seconds`."""
    then = time.time() - seconds
    for path in [root, *root.rglob("*")]:
        os.utime(path, (then, then))


def files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def add_job(status: str, job_id: int, finished_at: datetime | None = None) -> None:
    with session_scope(write=True) as session:
        job = Job(id=job_id, status=status, config={"epochs": 1}, attempts=1)
        session.add(job)
        job.finished_at = finished_at


def add_version(name: str, job_id: int, model_path: str) -> None:
    """Version 1 of a new registered model `name`, serving `model_path` (from job `job_id`)."""
    with session_scope(write=True) as session:
        model = RegisteredModel(name=name, description="", tags={}, last_version=1)
        session.add(model)
        session.flush()
        session.add(
            ModelVersion(
                model_id=model.id,
                version=1,
                job_id=job_id,
                model_path=model_path,
                test_accuracy=0.5,
                lineage={},
            )
        )


def test_it_removes_what_no_row_refers_to_and_nothing_else(migrated_env: Env) -> None:
    data, artifacts = migrated_env.data_dir, migrated_env.artifacts_dir
    with session_scope(write=True) as session:
        upload = Published("datasets/ds-000000000001/upload", 1, "0" * 64)
        create_dataset(
            session, "ds-000000000001", name="a.zip", kind="images", options={}, upload=upload
        )
    add_job(JobStatus.SUCCEEDED, 1)
    add_job(JobStatus.RUNNING, 2)
    add_version("cats", 1, "jobs/1/model-attempt1.pt")
    # Referred to by a row: kept.
    write(data / "datasets/ds-000000000001/images.pt", 100)  # decoded before the store
    write(artifacts / "datasets/ds-000000000001/upload", 100)
    write(artifacts / "jobs/1/model-attempt1.pt", 100)
    write(artifacts / "jobs/1/test-predictions-attempt1.pt", 100)
    write(artifacts / "jobs/2/checkpoints/epoch0001-step00000010.pt", 100)  # a running job's
    write(artifacts / "exports/cats/v1/cats-v1.onnx", 100)
    # Not the sweep's to judge: kept.
    write(data / "datasets/notes.txt", 100)
    write(data / "cifar-10-batches-py/data_batch_1", 100)
    write(artifacts / "jobs/notes/a.txt", 100)
    # No row: removed.
    write(data / "incoming/ds-00000000000a", 5)  # an upload whose API died before its row
    write(data / "datasets/ds-00000000000b/upload", 7)  # a dataset row never committed
    write(artifacts / "datasets/ds-00000000000d/upload", 3)  # since the store
    write(artifacts / "weights/wt-00000000000c/weights.pt", 9)  # a weights row never committed
    write(artifacts / "jobs/3/model-attempt1.pt", 11)  # a deleted job's
    write(artifacts / "jobs/3/test-predictions-attempt1.pt", 19)
    write(artifacts / "exports/cats/v2/cats-v2.onnx", 13)  # a deleted version's
    write(artifacts / "exports/gone/v1/gone-v1.onnx", 17)  # a deleted model's
    age(data, 2 * HOUR_S)
    age(artifacts, 2 * HOUR_S)

    report = sweep_unreferenced_files(data, artifacts, grace_s=HOUR_S)

    assert str(report) == (
        "1 unfinished upload(s), 2 folder(s) of deleted datasets, 1 folder(s) of deleted "
        "weights files, 1 folder(s) of deleted jobs, 2 export folder(s) of deleted model "
        "versions, 0 unrecorded file(s) of finished jobs and datasets: 84 bytes"
    )
    assert files(data) == [
        "cifar-10-batches-py/data_batch_1",
        "datasets/ds-000000000001/images.pt",
        "datasets/notes.txt",
    ]
    assert files(artifacts) == [
        "datasets/ds-000000000001/upload",
        "exports/cats/v1/cats-v1.onnx",
        "jobs/1/model-attempt1.pt",
        "jobs/1/test-predictions-attempt1.pt",
        "jobs/2/checkpoints/epoch0001-step00000010.pt",
        "jobs/notes/a.txt",
    ]
    # The deleted model's emptied folder goes once it has been left alone for the grace period.
    assert (artifacts / "exports/gone").is_dir()
    age(artifacts / "exports/gone", 2 * HOUR_S)
    again = sweep_unreferenced_files(data, artifacts, grace_s=HOUR_S)
    assert (str(again), (artifacts / "exports/gone").exists()) == (
        "0 unfinished upload(s), 0 folder(s) of deleted datasets, 0 folder(s) of deleted "
        "weights files, 0 folder(s) of deleted jobs, 0 export folder(s) of deleted model "
        "versions, 0 unrecorded file(s) of finished jobs and datasets: 0 bytes",
        False,
    )


def test_what_changed_within_the_grace_period_is_left_alone(migrated_env: Env) -> None:
    data, artifacts = migrated_env.data_dir, migrated_env.artifacts_dir
    write(data / "incoming/ds-00000000000a", 5)  # an upload being checked now
    write(data / "datasets/ds-00000000000b/upload", 7)  # its row being committed now
    stale = write(artifacts / "jobs/3/model-attempt1.pt", 11)
    age(artifacts, 2 * HOUR_S)
    write(artifacts / "jobs/3/checkpoints/epoch0001-step00000010.pt", 13)  # a change inside

    kept = sweep_unreferenced_files(data, artifacts, grace_s=60)
    assert (kept.bytes, dict(kept.removed)) == (0, {})
    assert stale.exists()

    swept = sweep_unreferenced_files(data, artifacts, grace_s=0)
    assert (swept.bytes, dict(swept.removed)) == (36, {"uploads": 1, "datasets": 1, "jobs": 1})
    assert files(data) == files(artifacts) == []


def add_dataset(dataset_id: str, status: str, tensors_key: str | None = None) -> None:
    """A dataset row in `status` whose upload (recorded until it is decoded or fails) is
    `datasets/<id>/upload`."""
    with session_scope(write=True) as session:
        upload = Published(f"datasets/{dataset_id}/upload", 1, "0" * 64)
        create_dataset(session, dataset_id, name="a.zip", kind="images", options={}, upload=upload)
        dataset = session.get(Dataset, dataset_id)
        assert dataset is not None
        dataset.status = status
        if status in (DatasetStatus.READY, DatasetStatus.FAILED):
            dataset.upload_key = None
        dataset.tensors_key = tensors_key


def record_checkpoints(job_id: int, *keys: str) -> None:
    with session_scope(write=True) as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.checkpoint_key, job.previous_checkpoint_key = keys


def test_files_a_finished_row_does_not_record_go_and_unfinished_folders_stay_whole(
    migrated_env: Env,
) -> None:
    data, artifacts = migrated_env.data_dir, migrated_env.artifacts_dir
    add_dataset(
        "ds-000000000001", DatasetStatus.READY, "datasets/ds-000000000001/images-attempt2.pt"
    )
    add_dataset("ds-000000000002", DatasetStatus.FAILED)
    add_dataset("ds-000000000003", DatasetStatus.INGESTING)
    add_dataset("ds-000000000004", DatasetStatus.QUEUED)
    for job_id, status in enumerate(
        [JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.RUNNING, JobStatus.QUEUED], start=1
    ):
        add_job(status, job_id)
    add_job(JobStatus.SUCCEEDED, 5, finished_at=utcnow())  # its worker removes them next
    record_checkpoints(1, "jobs/1/checkpoints/b.pt", "jobs/1/checkpoints/a.pt")
    # Recorded, or in an unfinished row's folder: kept.
    write(artifacts / "datasets/ds-000000000001/images-attempt2.pt", 100)
    write(artifacts / "jobs/1/model-attempt1.pt", 100)
    write(artifacts / "jobs/1/checkpoints/a.pt", 100)
    write(artifacts / "jobs/1/checkpoints/b.pt", 100)
    write(artifacts / "jobs/2/model-attempt1.pt", 100)  # not a checkpoint: not this rule's
    write(artifacts / "jobs/5/checkpoints/a.pt", 100)
    for unfinished in ("datasets/ds-000000000003", "datasets/ds-000000000004", "jobs/3", "jobs/4"):
        write(artifacts / unfinished / "checkpoints/c.pt", 100)
        write(artifacts / unfinished / "images-attempt1.pt", 100)
    # Recorded by no finished row: removed.
    write(artifacts / "datasets/ds-000000000001/images-attempt1.pt", 3)  # a killed attempt's
    write(artifacts / "datasets/ds-000000000001/upload", 5)  # decoded: not removed by its worker
    write(artifacts / "datasets/ds-000000000001/.upload.0123abcd.tmp", 7)  # staged by a crash
    write(artifacts / "datasets/ds-000000000002/images-attempt1.pt", 11)
    write(artifacts / "jobs/1/checkpoints/c.pt", 13)  # written, its worker killed before recording
    write(artifacts / "jobs/2/checkpoints/a.pt", 17)  # a failed job records none
    age(artifacts, 2 * HOUR_S)
    write(artifacts / "jobs/2/checkpoints/d.pt", 19)  # unrecorded but recent: kept for now

    report = sweep_unreferenced_files(data, artifacts, grace_s=HOUR_S)

    assert (dict(report.removed), report.bytes) == ({"unrecorded": 6}, 56)
    assert str(report).endswith(
        "0 export folder(s) of deleted model versions, 6 unrecorded file(s) of finished jobs and "
        "datasets: 56 bytes"
    )
    assert files(artifacts) == [
        "datasets/ds-000000000001/images-attempt2.pt",
        "datasets/ds-000000000003/checkpoints/c.pt",
        "datasets/ds-000000000003/images-attempt1.pt",
        "datasets/ds-000000000004/checkpoints/c.pt",
        "datasets/ds-000000000004/images-attempt1.pt",
        "jobs/1/checkpoints/a.pt",
        "jobs/1/checkpoints/b.pt",
        "jobs/1/model-attempt1.pt",
        "jobs/2/checkpoints/d.pt",
        "jobs/2/model-attempt1.pt",
        "jobs/3/checkpoints/c.pt",
        "jobs/3/images-attempt1.pt",
        "jobs/4/checkpoints/c.pt",
        "jobs/4/images-attempt1.pt",
        "jobs/5/checkpoints/a.pt",
    ]
