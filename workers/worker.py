"""The worker process: claim a queued job, train it, record the results, repeat."""

import logging
import os
import signal
import socket
import threading
import time
import uuid
from pathlib import Path
from types import FrameType

from app.db import session_scope
from app.migrations import schema_is_current
from app.ml.checkpoints import save_model
from app.ml.cifar10 import DatasetError
from app.models import Job
from app.queue import (
    FinalResults,
    LostJob,
    claim_next_job,
    fail_job,
    finish_job,
    record_epoch,
    record_loss_point,
    record_progress,
    record_start,
    requeue_job,
)
from app.settings import Settings, get_settings
from workers.datasets import DatasetCache, limit_samples
from workers.train import (
    EpochMetrics,
    TrainConfig,
    TrainingDiverged,
    TrainingInterrupted,
    train,
)

log = logging.getLogger("trainserve.worker")

PROGRESS_WRITE_INTERVAL_S = 1.0
SCHEMA_WAIT_LOG_INTERVAL_S = 10.0


class JobRecorder:
    """Training hooks that store progress, loss points and epoch results for one job."""

    def __init__(
        self, job_id: int, worker_id: str, classes: list[str], stop: threading.Event
    ) -> None:
        self.job_id, self.worker_id, self.classes, self.stop = job_id, worker_id, classes, stop
        self._last_progress_write = 0.0

    def started(self, device: str, steps_per_epoch: int) -> None:
        log.info("job %s: training on %s, %d steps per epoch", self.job_id, device, steps_per_epoch)
        with session_scope() as session:
            record_start(
                session,
                self.job_id,
                self.worker_id,
                device=device,
                classes=self.classes,
                steps_per_epoch=steps_per_epoch,
            )

    def progress(self, epoch: int, step: int) -> None:
        now = time.monotonic()
        if now - self._last_progress_write < PROGRESS_WRITE_INTERVAL_S:
            return
        self._last_progress_write = now
        with session_scope() as session:
            record_progress(session, self.job_id, self.worker_id, epoch, step)

    def loss_point(self, epoch: int, step: int, loss: float) -> None:
        log.info("job %s: [%d, %5d] loss: %.3f", self.job_id, epoch, step, loss)
        with session_scope() as session:
            record_loss_point(session, self.job_id, self.worker_id, epoch, step, loss)

    def epoch_done(self, metrics: EpochMetrics) -> None:
        log.info(
            "job %s: epoch %d train loss %.3f, test loss %.3f, test accuracy %.2f%%",
            self.job_id,
            metrics.epoch,
            metrics.train_loss,
            metrics.evaluation.loss,
            100 * metrics.evaluation.accuracy,
        )
        with session_scope() as session:
            record_epoch(
                session,
                self.job_id,
                self.worker_id,
                epoch=metrics.epoch,
                steps=metrics.steps,
                train_loss=metrics.train_loss,
                test_loss=metrics.evaluation.loss,
                test_accuracy=metrics.evaluation.accuracy,
            )

    def should_stop(self) -> bool:
        return self.stop.is_set()


class Worker:
    """Runs queued jobs one at a time until asked to stop."""

    def __init__(self, settings: Settings, worker_id: str | None = None) -> None:
        self.settings = settings
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stop = threading.Event()
        self.datasets = DatasetCache(settings)

    def request_stop(self, signum: int = 0, _frame: FrameType | None = None) -> None:
        """Stop after handing the current job back to the queue."""
        if signum:
            log.info("worker %s: received signal %d, stopping", self.worker_id, signum)
        self.stop.set()

    def wait_for_schema(self) -> bool:
        """Wait until the migrations have been applied (by the API or `trainserve migrate`)."""
        last_log = -SCHEMA_WAIT_LOG_INTERVAL_S
        while not self.stop.is_set():
            if schema_is_current():
                return True
            if time.monotonic() - last_log >= SCHEMA_WAIT_LOG_INTERVAL_S:
                log.info(
                    "waiting for the database schema (start the API or run `trainserve migrate`)"
                )
                last_log = time.monotonic()
            self.stop.wait(self.settings.worker_poll_seconds)
        return False

    def run_forever(self) -> None:
        """Claim and run jobs until stopped."""
        log.info("worker %s started", self.worker_id)
        if not self.wait_for_schema():
            return
        while not self.stop.is_set():
            try:
                ran = self.run_once()
            except Exception:
                # A database hiccup must not end the worker; the job rows stay as they were.
                log.exception("worker %s: error outside a job; retrying", self.worker_id)
                ran = False
            if not ran:
                self.stop.wait(self.settings.worker_poll_seconds)
        log.info("worker %s stopped", self.worker_id)

    def run_once(self) -> bool:
        """Claim and run one queued job; False when the queue was empty."""
        with session_scope() as session:
            job_id = claim_next_job(session, self.worker_id)
        if job_id is None:
            return False
        log.info("worker %s claimed job %s", self.worker_id, job_id)
        try:
            self._run_job(job_id)
        except LostJob as exc:
            log.warning("%s; dropping it", exc)
        return True

    def _run_job(self, job_id: int) -> None:
        try:
            self._train_and_save(job_id)
        except TrainingInterrupted as exc:
            log.info("job %s: %s; back to the queue", job_id, exc)
            with session_scope() as session:
                requeue_job(session, job_id, self.worker_id)
        except LostJob:
            raise
        except (DatasetError, TrainingDiverged) as exc:
            self._fail(job_id, str(exc))
        except Exception as exc:
            log.exception("job %s failed", job_id)
            self._fail(job_id, f"{type(exc).__name__}: {exc}")

    def _fail(self, job_id: int, message: str) -> None:
        log.error("job %s failed: %s", job_id, message)
        with session_scope() as session:
            fail_job(session, job_id, self.worker_id, message)

    def _train_and_save(self, job_id: int) -> None:
        with session_scope() as session:
            job = session.get(Job, job_id)
            assert job is not None
            config = dict(job.config)
        dataset = limit_samples(
            self.datasets.load(config["dataset"]),
            config.get("max_train_samples"),
            config.get("max_test_samples"),
        )
        recorder = JobRecorder(job_id, self.worker_id, dataset.classes, self.stop)
        result = train(
            TrainConfig.from_job_config(config),
            dataset.train,
            dataset.test,
            dataset.classes,
            recorder,
        )
        relative_path = Path("jobs") / str(job_id) / "model.pt"
        save_model(
            self.settings.artifacts_dir / relative_path,
            result.model,
            arch=config["model"],
            classes=dataset.classes,
            image_size=dataset.image_size,
        )
        with session_scope() as session:
            finish_job(
                session,
                job_id,
                self.worker_id,
                FinalResults(
                    test_accuracy=result.final.accuracy,
                    per_class_accuracy=result.final.per_class_accuracy,
                    confusion_matrix=result.final.confusion_matrix,
                    model_path=relative_path.as_posix(),
                ),
            )
        log.info("job %s succeeded: test accuracy %.2f%%", job_id, 100 * result.final.accuracy)


def configure_logging(level: str) -> None:
    """Timestamped log lines on stderr."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def main() -> None:
    """Entry point of `trainserve worker` and `python -m workers`."""
    settings = get_settings()
    configure_logging(settings.log_level)
    worker = Worker(settings)
    signal.signal(signal.SIGTERM, worker.request_stop)
    signal.signal(signal.SIGINT, worker.request_stop)
    worker.run_forever()
