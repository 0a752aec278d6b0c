import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from sqlalchemy import select

from app.db import session_scope
from app.jobs.config import JobConfig, JobCreate, JobFields
from app.jobs.transitions import claim_next_job, create_job
from app.jobs.worker_registry import register_worker
from app.migrations import upgrade_to_head
from app.ml.checkpoints import load_model
from app.models import Job, JobStatus, LossPoint, WorkerRecord
from app.settings import get_settings
from tests.conftest import Env, synthetic_split, write_cifar_layout
from workers.worker import Worker

# The tutorial recipe, fixed seed, on the CPU, with a loss point every 25 mini-batches.
QUICK = {**JobFields().model_dump(), "seed": 1, "log_every": 25, "device": "cpu"}


def queue(**overrides: object) -> int:
    with session_scope() as session:
        return create_job(session, JobConfig.model_validate({**QUICK, **overrides})).id


def load(job_id: int) -> Job:
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        _ = job.loss_points, job.epoch_results  # loaded before the session closes
        return job


def test_runs_a_job_and_records_everything(migrated_env: Env, synthetic_cifar: Path) -> None:
    job_id = queue(max_train_samples=200, max_test_samples=50)
    worker = Worker(migrated_env.settings(), worker_id="w1")

    assert worker.run_once() is True

    job = load(job_id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.device == "cpu" and job.worker_id == "w1"
    assert job.started_at is not None and job.finished_at is not None
    assert job.steps_per_epoch == 50
    assert (job.progress_epoch, job.progress_step) == (2, 50)
    assert [(p.epoch, p.step) for p in job.loss_points] == [(1, 25), (1, 50), (2, 25), (2, 50)]
    assert [e.epoch for e in job.epoch_results] == [1, 2]
    assert job.test_accuracy == job.epoch_results[-1].test_accuracy
    assert job.classes is not None and len(job.classes) == 10
    assert job.confusion_matrix is not None
    assert sum(map(sum, job.confusion_matrix)) == 50
    assert [sum(row) for row in job.confusion_matrix] == [5] * 10  # balanced subset
    assert job.per_class_accuracy is not None
    assert list(job.per_class_accuracy) == job.classes
    assert job.model_path == f"jobs/{job_id}/model-attempt1.pt"
    saved = load_model(migrated_env.artifacts_dir / job.model_path)
    assert saved.classes == job.classes and saved.image_size == (32, 32)
    assert worker.run_once() is False  # queue empty


def test_a_failing_job_does_not_stop_the_worker(migrated_env: Env, synthetic_cifar: Path) -> None:
    (synthetic_cifar / "test_batch").write_bytes(b"not a pickle")
    broken = queue(epochs=1)
    worker = Worker(migrated_env.settings(), worker_id="w1")
    assert worker.run_once() is True
    job = load(broken)
    assert job.status == JobStatus.FAILED
    assert job.error is not None
    assert f"{synthetic_cifar / 'test_batch'} is not a readable CIFAR-10 batch file" in job.error
    assert job.finished_at is not None

    # Mend the data: the same worker goes on to the next job.
    write_cifar_layout(migrated_env.data_dir, synthetic_split(400, 1), synthetic_split(100, 2))
    good = queue(epochs=1, max_train_samples=40)
    assert worker.run_once() is True
    assert load(good).status == JobStatus.SUCCEEDED


def test_missing_dataset_fails_naming_the_folder(migrated_env: Env) -> None:
    job_id = queue()
    Worker(migrated_env.settings()).run_once()
    job = load(job_id)
    assert job.status == JobStatus.FAILED
    data_dir = migrated_env.data_dir.resolve()
    assert job.error == (
        "CIFAR-10 not found and TRAINSERVE_DOWNLOAD is off: put data_batch_1, data_batch_2, "
        f"data_batch_3, data_batch_4, data_batch_5, test_batch, batches.meta in "
        f"{data_dir}/cifar-10-batches-py/ (tar -xzf cifar-10-python.tar.gz -C {data_dir} puts "
        "them there), or set TRAINSERVE_DOWNLOAD=1 to download them"
    )


def test_a_failed_download_says_where_the_files_go(
    migrated_env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first run on a machine without internet: nothing listens on port 9 of loopback.
    monkeypatch.setenv("TRAINSERVE_DOWNLOAD", "1")
    monkeypatch.setenv("TRAINSERVE_CIFAR10_URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    get_settings.cache_clear()
    job_id = queue()
    Worker(get_settings()).run_once()
    job = load(job_id)
    assert job.status == JobStatus.FAILED
    data_dir = migrated_env.data_dir.resolve()
    assert job.error == (
        "could not download CIFAR-10 from http://127.0.0.1:9/cifar-10-python.tar.gz ([Errno 111] "
        "Connection refused); without internet, put data_batch_1, data_batch_2, data_batch_3, "
        f"data_batch_4, data_batch_5, test_batch, batches.meta in {data_dir}/cifar-10-batches-py/ "
        f"(tar -xzf cifar-10-python.tar.gz -C {data_dir} puts them there) and set "
        "TRAINSERVE_DOWNLOAD=0 to turn downloads off"
    )


def test_divergence_fails_the_job_with_its_reason(migrated_env: Env, synthetic_cifar: Path) -> None:
    job_id = queue(learning_rate=5.0, log_every=10, seed=0, epochs=1)
    Worker(migrated_env.settings()).run_once()
    job = load(job_id)
    assert job.status == JobStatus.FAILED
    assert job.error is not None and job.error.startswith("training diverged: the loss became nan")


def test_a_stored_config_this_version_refuses_fails_the_job_clearly(
    migrated_env: Env, synthetic_cifar: Path
) -> None:
    job_id = queue()
    with session_scope(write=True) as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.config = {**job.config, "log_every": 2**40}  # as an early version allowed
    Worker(migrated_env.settings()).run_once()
    job = load(job_id)
    assert job.status == JobStatus.FAILED
    assert job.error == (
        "the job's stored config is not valid in this version "
        "(log_every: Input should be less than or equal to 2147483647)"
    )


def stop_when(worker: Worker, condition: Callable[[], bool]) -> threading.Thread:
    """A thread that asks the worker to stop (as SIGTERM does) once condition holds."""

    def watch() -> None:
        while not condition():
            time.sleep(0.01)
        worker.request_stop()

    watcher = threading.Thread(target=watch)
    watcher.start()
    return watcher


def loss_point_count(job_id: int) -> int:
    with session_scope() as session:
        return len(session.scalars(select(LossPoint).where(LossPoint.job_id == job_id)).all())


def registered(worker: Worker) -> Worker:
    """The worker with its record, as run_forever makes it."""
    with session_scope(write=True) as session:
        register_worker(session, worker.worker_id, worker.offer)
    return worker


def images_trained(worker_id: str) -> int:
    """What the worker's record says it has trained (what /metrics exposes)."""
    with session_scope() as session:
        record = session.get(WorkerRecord, worker_id)
        assert record is not None
        return record.images_trained


def assert_same_run(job: Job, reference: Job) -> None:
    """The job ended as the reference run: every loss point (to 1e-6) and its test results."""
    assert [(p.epoch, p.step) for p in job.loss_points] == [
        (p.epoch, p.step) for p in reference.loss_points
    ]
    assert [p.loss for p in job.loss_points] == pytest.approx(
        [p.loss for p in reference.loss_points], abs=1e-6
    )
    assert job.test_accuracy == reference.test_accuracy
    assert job.confusion_matrix == reference.confusion_matrix


def test_stop_checkpoints_and_the_next_worker_resumes_exactly(
    migrated_env: Env, synthetic_cifar: Path
) -> None:
    settings = migrated_env.settings()
    straight = queue(epochs=3, log_every=5, seed=4)
    assert Worker(settings).run_once()
    reference = load(straight)

    job_id = queue(epochs=3, log_every=5, seed=4)
    first = registered(Worker(settings, worker_id="w1"))
    watcher = stop_when(first, lambda: loss_point_count(job_id) >= 3)
    first.run_once()
    watcher.join()

    job = load(job_id)
    assert job.status == JobStatus.QUEUED and job.worker_id is None
    assert job.attempts == 0  # a graceful stop does not count as an attempt
    assert len(job.loss_points) >= 3
    checkpoints = list((migrated_env.artifacts_dir / f"jobs/{job_id}/checkpoints").iterdir())
    assert len(checkpoints) == 1
    # The first worker trained up to its checkpoint (batches of 4 of the 400 images); the second
    # from there to the end.
    epoch, step = map(int, re.findall(r"(?:epoch|step)(\d+)", checkpoints[0].name))
    stopped_at = (epoch - 1) * 400 + 4 * step
    assert images_trained("w1") == stopped_at

    assert registered(Worker(settings, worker_id="w2")).run_once()
    assert images_trained("w2") == 3 * 400 - stopped_at
    job = load(job_id)
    assert job.status == JobStatus.SUCCEEDED and job.worker_id == "w2" and job.attempts == 1
    assert_same_run(job, reference)
    # Checkpoints are removed once the model is saved.
    assert not (migrated_env.artifacts_dir / f"jobs/{job_id}/checkpoints").exists()


def test_each_job_is_claimed_by_exactly_one_of_many_workers(migrated_env: Env) -> None:
    job_ids = {queue() for _ in range(20)}
    claims: dict[str, list[int]] = {f"w{i}": [] for i in range(4)}
    barrier = threading.Barrier(len(claims))

    def claim_all(worker_id: str) -> None:
        barrier.wait()
        while True:
            with session_scope() as session:
                claimed = claim_next_job(session, worker_id, 30)
            if claimed is None:
                return
            claims[worker_id].append(claimed.job_id)

    threads = [threading.Thread(target=claim_all, args=(w,)) for w in claims]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    everything = [job_id for ids in claims.values() for job_id in ids]
    assert sorted(everything) == sorted(job_ids)  # all claimed, none twice
    for worker_id, ids in claims.items():
        for job_id in ids:
            assert load(job_id).worker_id == worker_id


def test_a_worker_waits_for_the_schema(env: Env) -> None:
    worker = Worker(env.settings())
    done: list[bool] = []
    waiting = threading.Thread(target=lambda: done.append(worker.wait_for_schema()))
    waiting.start()
    waiting.join(0.5)
    assert waiting.is_alive()  # no schema yet: it waits rather than creating one

    upgrade_to_head()
    waiting.join(10)
    assert done == [True]


def test_a_stopped_worker_gives_up_waiting(env: Env) -> None:
    worker = Worker(env.settings())
    worker.request_stop()
    assert worker.wait_for_schema() is False


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.FAILED])
def test_finished_jobs_are_never_claimed(migrated_env: Env, status: JobStatus) -> None:
    job_id = queue()
    with session_scope() as session:
        session.get(Job, job_id).status = status  # type: ignore[union-attr]
    with session_scope() as session:
        assert claim_next_job(session, "w1", 30) is None
    assert load(job_id).status == status


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message of a worker with no GPU")
def test_a_job_fixing_cuda_graphs_fails_clearly_on_a_cpu_worker(
    migrated_env: Env, synthetic_cifar: Path
) -> None:
    job_id = queue(device="auto", cuda_graphs=True)
    assert Worker(migrated_env.settings(), worker_id="w1").run_once() is True
    job = load(job_id)
    assert job.status == JobStatus.FAILED
    assert job.error == (
        "the job asks for cuda_graphs but trains on cpu; CUDA graphs need a CUDA GPU"
    )


def test_the_fast_recipe_runs_as_a_job(migrated_env: Env, synthetic_cifar: Path) -> None:
    config = JobCreate(recipe="fast", epochs=2, batch_size=64, log_every=3, seed=4).resolved()
    with session_scope() as session:
        job_id = create_job(session, config).id
    assert Worker(migrated_env.settings(), worker_id="w1").run_once() is True
    job = load(job_id)
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.steps_per_epoch == 7  # 400 images in batches of 64
    assert [(p.epoch, p.step) for p in job.loss_points] == [(1, 3), (1, 6), (2, 3), (2, 6)]


def test_a_two_process_job_trains_as_the_same_job_in_one(
    migrated_env: Env, synthetic_cifar: Path
) -> None:
    limits = {"max_train_samples": 200, "max_test_samples": 50, "batch_size": 5}
    one = queue(**limits)
    two = queue(**limits, device="auto", cpu_processes=2)
    worker = registered(Worker(migrated_env.settings(), worker_id="w1"))
    assert worker.run_once() and worker.run_once()
    # Two jobs of two epochs of 200 images; the two processes' shares of a batch count once.
    assert images_trained("w1") == 2 * 2 * 200

    single, double = load(one), load(two)
    assert double.status == JobStatus.SUCCEEDED, double.error
    assert double.device == "cpu" and double.steps_per_epoch == 40
    assert [(p.epoch, p.step) for p in double.loss_points] == [(1, 25), (2, 25)]
    assert [p.loss for p in double.loss_points] == pytest.approx(
        [p.loss for p in single.loss_points], rel=1e-4
    )
    assert double.confusion_matrix == single.confusion_matrix
    assert double.model_path == f"jobs/{two}/model-attempt1.pt"
    saved = load_model(migrated_env.artifacts_dir / double.model_path)
    reference = load_model(migrated_env.artifacts_dir / str(single.model_path))
    pairs = zip(
        saved.model.state_dict().values(), reference.model.state_dict().values(), strict=True
    )
    for a, b in pairs:
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
