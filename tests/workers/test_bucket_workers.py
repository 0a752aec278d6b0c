"""Workers whose artifacts are in a bucket of a real S3-compatible server: one does not claim
before its bucket answers, and a job checkpointed by a worker on one machine resumes on a
worker on another (its own empty folder) from the bucket, or starts over when the checkpoint
there was damaged."""

import logging
import threading
import time
import uuid
from pathlib import Path

import pytest

from app.db import session_scope
from app.models import Job, JobStatus
from app.settings import Settings
from tests.conftest import Env
from tests.s3 import S3Bucket
from tests.workers.test_worker import assert_same_run, load, loss_point_count, queue, stop_when
from workers.worker import Worker


def on_machine(settings: Settings, folder: Path) -> Settings:
    """The settings of a worker on another machine: its own artifacts folder (its cache)."""
    return settings.model_copy(update={"artifacts_dir": folder})


def wait_until(condition: object, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.05)


def test_a_worker_claims_nothing_until_its_bucket_answers(
    s3_bucket: S3Bucket,
    migrated_env: Env,
    synthetic_cifar: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    late = f"trainserve-late-{uuid.uuid4().hex[:8]}"
    settings = migrated_env.settings().model_copy(update={"artifacts_url": f"s3://{late}/p"})
    job_id = queue(epochs=1, max_train_samples=40, max_test_samples=20)
    worker = Worker(settings, worker_id="w1")
    running = threading.Thread(target=worker.run_forever)
    caplog.set_level(logging.INFO, logger="trainserve.worker")
    running.start()
    client = s3_bucket.server.client()
    try:
        wait_until(lambda: "claiming nothing until it answers" in caplog.text)
        assert (
            f"worker w1: artifact store s3://{late}/p at {s3_bucket.server.endpoint}: refused: "
            f"the bucket {late} does not exist; claiming nothing until it answers"
        ) in caplog.text
        time.sleep(1)
        assert load(job_id).status == JobStatus.QUEUED

        client.create_bucket(Bucket=late)
        wait_until(lambda: load(job_id).status == JobStatus.SUCCEEDED)
    finally:
        worker.request_stop()
        running.join()
        for item in client.list_objects_v2(Bucket=late).get("Contents", []):
            client.delete_object(Bucket=late, Key=item["Key"])
        client.delete_bucket(Bucket=late)
    assert load(job_id).worker_id == "w1"


@pytest.mark.parametrize("damaged", [False, True], ids=["resumed", "damaged: started over"])
def test_a_checkpoint_made_on_one_machine_resumes_on_another(
    s3_bucket: S3Bucket,
    migrated_env: Env,
    synthetic_cifar: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    damaged: bool,
) -> None:
    settings = migrated_env.settings()
    straight = queue(epochs=2, log_every=5, seed=4)
    assert Worker(on_machine(settings, tmp_path / "reference")).run_once()
    reference = load(straight)

    job_id = queue(epochs=2, log_every=5, seed=4)
    first = Worker(on_machine(settings, tmp_path / "first"), worker_id="w1")
    watcher = stop_when(first, lambda: loss_point_count(job_id) >= 3)
    first.run_once()
    watcher.join()
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == JobStatus.QUEUED
        recorded = job.checkpoint_key
    assert recorded is not None and recorded.endswith("-attempt1.pt")
    assert s3_bucket.stored_keys()[-1] == recorded  # after the reference job's files
    if damaged:
        client, name = s3_bucket.server.client(), s3_bucket.name(recorded)
        data = client.get_object(Bucket=s3_bucket.bucket, Key=name)["Body"].read()
        client.put_object(Bucket=s3_bucket.bucket, Key=name, Body=b"X" + data[1:])

    caplog.set_level(logging.INFO, logger="trainserve.worker")
    second = Worker(on_machine(settings, tmp_path / "second"), worker_id="w2")
    assert second.run_once()
    name = recorded.rpartition("/")[2]
    if damaged:
        assert f"job {job_id}: its checkpoint cannot be used (" in caplog.text
        assert f"{recorded} is damaged: its sha256 is" in caplog.text
        assert "resuming from checkpoint" not in caplog.text
    else:
        assert f"job {job_id}: resuming from checkpoint {name} (epoch 1, step" in caplog.text
    job = load(job_id)
    assert (job.status, job.worker_id, job.attempts) == (JobStatus.SUCCEEDED, "w2", 1)
    assert_same_run(job, reference)
    assert not (tmp_path / "second" / "jobs").exists()  # nothing in the local layout
    keys = s3_bucket.stored_keys()
    assert [k for k in keys if k.startswith(f"jobs/{job_id}/")] == [
        f"jobs/{job_id}/model-attempt1.pt",
        f"jobs/{job_id}/test-predictions-attempt1.pt",
    ]
