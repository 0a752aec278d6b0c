"""The only code that changes a job's status; every change is a guarded UPDATE."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import EpochResult, Job, JobStatus, LossPoint


class LostJob(Exception):
    """The job is no longer running under this worker; nothing more may be written for it."""


@dataclass(frozen=True)
class FinalResults:
    test_accuracy: float
    per_class_accuracy: dict[str, float]
    confusion_matrix: list[list[int]]
    model_path: str


def create_job(session: Session, config: dict[str, Any]) -> Job:
    """Queue a job with a fully resolved config."""
    job = Job(status=JobStatus.QUEUED, config=config, progress_epoch=0, progress_step=0)
    session.add(job)
    session.flush()
    return job


def claim_next_job(session: Session, worker_id: str) -> int | None:
    """Atomically move the oldest queued job to running under worker_id; its id, or None."""
    oldest_queued = (
        select(Job.id).where(Job.status == JobStatus.QUEUED).order_by(Job.id).limit(1)
    ).scalar_subquery()
    claimed = session.execute(
        update(Job)
        .where(Job.id == oldest_queued, Job.status == JobStatus.QUEUED)
        .values(
            status=JobStatus.RUNNING,
            worker_id=worker_id,
            started_at=utcnow(),
            progress_epoch=0,
            progress_step=0,
            error=None,
        )
        .returning(Job.id)
    ).scalar_one_or_none()
    return claimed


def _update_owned(session: Session, job_id: int, owner: str, **values: Any) -> None:
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING, Job.worker_id == owner)
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise LostJob(f"job {job_id} is no longer running under {owner}")


def record_start(
    session: Session,
    job_id: int,
    worker_id: str,
    *,
    device: str,
    classes: list[str],
    steps_per_epoch: int,
) -> None:
    """Store where the job runs and what its dataset looks like."""
    _update_owned(
        session,
        job_id,
        worker_id,
        device=device,
        classes=classes,
        steps_per_epoch=steps_per_epoch,
        progress_epoch=1,
        progress_step=0,
    )


def record_progress(session: Session, job_id: int, worker_id: str, epoch: int, step: int) -> None:
    """Store how far training has come."""
    _update_owned(session, job_id, worker_id, progress_epoch=epoch, progress_step=step)


def record_loss_point(
    session: Session, job_id: int, worker_id: str, epoch: int, step: int, loss: float
) -> None:
    """Append one loss point (and the progress it marks)."""
    _update_owned(session, job_id, worker_id, progress_epoch=epoch, progress_step=step)
    session.execute(insert(LossPoint).values(job_id=job_id, epoch=epoch, step=step, loss=loss))


def record_epoch(
    session: Session,
    job_id: int,
    worker_id: str,
    *,
    epoch: int,
    steps: int,
    train_loss: float,
    test_loss: float,
    test_accuracy: float,
) -> None:
    """Append the results of a finished epoch."""
    _update_owned(session, job_id, worker_id, progress_epoch=epoch, progress_step=steps)
    session.execute(
        insert(EpochResult).values(
            job_id=job_id,
            epoch=epoch,
            train_loss=train_loss,
            test_loss=test_loss,
            test_accuracy=test_accuracy,
        )
    )


def finish_job(session: Session, job_id: int, worker_id: str, results: FinalResults) -> None:
    """Mark the job succeeded with its final results."""
    _update_owned(
        session,
        job_id,
        worker_id,
        status=JobStatus.SUCCEEDED,
        finished_at=utcnow(),
        test_accuracy=results.test_accuracy,
        per_class_accuracy=results.per_class_accuracy,
        confusion_matrix=results.confusion_matrix,
        model_path=results.model_path,
    )


def fail_job(session: Session, job_id: int, worker_id: str, message: str) -> None:
    """Mark the job failed with a message for the user."""
    _update_owned(
        session, job_id, worker_id, status=JobStatus.FAILED, finished_at=utcnow(), error=message
    )


def requeue_job(session: Session, job_id: int, worker_id: str) -> None:
    """Hand an interrupted job back to the queue; it will start over."""
    _update_owned(
        session,
        job_id,
        worker_id,
        status=JobStatus.QUEUED,
        worker_id=None,
        started_at=None,
        device=None,
        progress_epoch=0,
        progress_step=0,
    )
    # The job restarts from scratch, so its partial history would otherwise repeat.
    session.execute(delete(LossPoint).where(LossPoint.job_id == job_id))
    session.execute(delete(EpochResult).where(EpochResult.job_id == job_id))
