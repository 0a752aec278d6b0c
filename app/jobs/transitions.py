"""The only code that changes a job's status; every change is a guarded UPDATE.

A running job carries a lease: the worker that claimed it (`worker_id`), the attempt number it
claimed (`attempts`) and an expiry that the worker's heartbeat keeps pushing forward. Every write a
worker makes is guarded by all three, so a worker that has lost its lease writes nothing more.
Callers pass sessions opened with `session_scope(write=True)`. Each change also appends its
event to the job's event log (app/jobs/events.py), in the same transaction.
"""

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, event, false, func, select, update
from sqlalchemy.orm import Session

from app.db import utcnow
from app.jobs.config import JobConfig
from app.jobs.events import EventKind, append_event, status_event
from app.jobs.placement import gpus_needed
from app.models import Job, JobStatus
from app.registry.promotion import register_finished_job

log = logging.getLogger("trainserve.jobs")


class LostJob(Exception):
    """The job is no longer running under this lease; nothing more may be written for it."""


@dataclass(frozen=True)
class Lease:
    job_id: int
    owner: str
    attempt: int


# A job that ended has no use for its checkpoints (a retry is a new job that starts over): its
# worker removes them, else the sweep does, since no row records them any more.
NO_CHECKPOINT: dict[str, Any] = {
    "checkpoint_key": None,
    "checkpoint_sha256": None,
    "previous_checkpoint_key": None,
    "previous_checkpoint_sha256": None,
}


@dataclass(frozen=True)
class FinalResults:
    test_accuracy: float
    per_class_accuracy: dict[str, float]
    confusion_matrix: list[list[int]]
    model_path: str  # its key in the artifact store
    model_sha256: str
    dataset_sha256: str  # the dataset's files, as app/ml's loaders read them
    test_images: int
    best_epoch: int | None = None
    predictions_sha256: str | None = None  # of the test predictions, at predictions_key(...)


def create_job(
    session: Session,
    config: JobConfig,
    *,
    max_attempts: int = 3,
    idempotency_key: str | None = None,
    request_fingerprint: str | None = None,
    retry_of: int | None = None,
) -> Job:
    """Queue a job with its resolved config."""
    job = Job(
        status=JobStatus.QUEUED,
        config=config.model_dump(mode="json"),
        progress_epoch=0,
        progress_step=0,
        attempts=0,
        max_attempts=max_attempts,
        idempotency_key=idempotency_key,
        request_fingerprint=request_fingerprint,
        retry_of=retry_of,
        gpus_needed=gpus_needed(config),
    )
    session.add(job)
    session.flush()
    status_event(session, job.id, JobStatus.QUEUED, retry_of=retry_of)
    retry = "" if retry_of is None else f" (a retry of job {retry_of})"
    # Said once it is committed: a write that fails (the database's disk full) queued nothing.
    event.listen(
        session,
        "after_commit",
        lambda _session: log.info(
            "job %d queued%s: %s on %s", job.id, retry, config.model, config.dataset
        ),
        once=True,
    )
    return job


def claim_next_job(
    session: Session, owner: str, lease_seconds: float, gpus: int = 0
) -> Lease | None:
    """Atomically move the oldest queued job that needs at most `gpus` GPUs to running under a
    new lease; None if there is none."""
    now = utcnow()
    oldest_queued = (
        select(Job.id)
        .where(Job.status == JobStatus.QUEUED, Job.gpus_needed <= gpus)
        .order_by(Job.id)
        .limit(1)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite's write lock does this
    ).scalar_subquery()
    row = session.execute(
        update(Job)
        .where(Job.id == oldest_queued, Job.status == JobStatus.QUEUED)
        .values(
            status=JobStatus.RUNNING,
            worker_id=owner,
            attempts=Job.attempts + 1,
            lease_expires_at=now + timedelta(seconds=lease_seconds),
            heartbeat_at=now,
            started_at=func.coalesce(Job.started_at, now),
            error=None,
        )
        .returning(Job.id, Job.attempts)
    ).one_or_none()
    if row is None:
        return None
    status_event(session, row[0], JobStatus.RUNNING, attempt=row[1], worker_id=owner)
    return Lease(job_id=row[0], owner=owner, attempt=row[1])


def recover_expired_leases(session: Session, now: datetime | None = None) -> tuple[int, int]:
    """Requeue running jobs whose lease expired, failing those out of attempts.

    Returns how many were requeued and how many failed.
    """
    now = now or utcnow()
    expired = and_(Job.status == JobStatus.RUNNING, Job.lease_expires_at < now)
    error = (
        "the job's worker was lost (its lease expired without a heartbeat) "
        "on every one of its attempts; giving up"
    )
    failed = session.scalars(
        update(Job)
        .where(expired, Job.attempts >= Job.max_attempts)
        .values(
            status=JobStatus.FAILED,
            finished_at=now,
            lease_expires_at=None,
            error=error,
            **NO_CHECKPOINT,
        )
        .returning(Job.id)
    ).all()
    for job_id in failed:
        status_event(session, job_id, JobStatus.FAILED, error=error)
    requeued = session.scalars(
        update(Job)
        .where(expired, Job.attempts < Job.max_attempts)
        .values(status=JobStatus.QUEUED, worker_id=None, lease_expires_at=None)
        .returning(Job.id)
    ).all()
    for job_id in requeued:
        status_event(
            session,
            job_id,
            JobStatus.QUEUED,
            reason="its worker was lost (the lease expired); it resumes from its last checkpoint",
        )
    return len(requeued), len(failed)


def update_leased(session: Session, lease: Lease, **values: Any) -> None:
    """Write `values` to the job only while `lease` holds it, else raise LostJob. Outside this
    module it writes progress only (app/jobs/progress.py): status changes all live here."""
    result = session.execute(
        update(Job)
        .where(
            Job.id == lease.job_id,
            Job.status == JobStatus.RUNNING,
            Job.worker_id == lease.owner,
            Job.attempts == lease.attempt,
        )
        .values(**values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise LostJob(f"job {lease.job_id} is no longer leased to {lease.owner}")


def finish_job(session: Session, lease: Lease, results: FinalResults) -> None:
    """Mark the job succeeded with its final results, and register its model when it names a
    model to register as: both happen, or neither."""
    update_leased(
        session,
        lease,
        status=JobStatus.SUCCEEDED,
        finished_at=utcnow(),
        lease_expires_at=None,
        test_accuracy=results.test_accuracy,
        per_class_accuracy=results.per_class_accuracy,
        confusion_matrix=results.confusion_matrix,
        model_path=results.model_path,
        model_sha256=results.model_sha256,
        predictions_sha256=results.predictions_sha256,
        dataset_sha256=results.dataset_sha256,
        test_images=results.test_images,
        best_epoch=results.best_epoch,
        **NO_CHECKPOINT,
    )
    job = session.get_one(Job, lease.job_id, populate_existing=True)
    config = JobConfig.from_stored(job.config)
    if config.register_as is not None:
        registration = register_finished_job(session, job, config.register_as, config.promote)
        append_event(session, lease.job_id, EventKind.REGISTERED, asdict(registration))
    status_event(
        session,
        lease.job_id,
        JobStatus.SUCCEEDED,
        test_accuracy=results.test_accuracy,
        per_class_accuracy=results.per_class_accuracy,
        confusion_matrix=results.confusion_matrix,
        best_epoch=results.best_epoch,
    )


def fail_job(session: Session, lease: Lease, message: str) -> None:
    """Mark the job failed with a message for the user."""
    update_leased(
        session,
        lease,
        status=JobStatus.FAILED,
        finished_at=utcnow(),
        lease_expires_at=None,
        error=message,
        **NO_CHECKPOINT,
    )
    status_event(session, lease.job_id, JobStatus.FAILED, error=message)


def cancel_running_job(session: Session, lease: Lease) -> None:
    """End a running job whose cancel was requested."""
    update_leased(
        session,
        lease,
        status=JobStatus.CANCELLED,
        finished_at=utcnow(),
        lease_expires_at=None,
        **NO_CHECKPOINT,
    )
    status_event(session, lease.job_id, JobStatus.CANCELLED)


def release_job(session: Session, lease: Lease) -> None:
    """Hand a job back to the queue without counting the attempt (graceful worker stop)."""
    update_leased(
        session,
        lease,
        status=JobStatus.QUEUED,
        worker_id=None,
        lease_expires_at=None,
        attempts=Job.attempts - 1,
    )
    status_event(
        session,
        lease.job_id,
        JobStatus.QUEUED,
        reason="its worker stopped; the next worker resumes it from its last checkpoint",
    )


def request_cancel(session: Session, job_id: int) -> str | None:
    """Cancel a queued job now or ask its worker to stop a running one.

    Returns the job's status afterwards ("cancelled" or "running"), or None when the job has
    already finished.
    """
    cancelled = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.QUEUED)
        .values(status=JobStatus.CANCELLED, finished_at=utcnow())
    ).rowcount  # type: ignore[attr-defined]
    if cancelled:
        status_event(session, job_id, JobStatus.CANCELLED)
        return JobStatus.CANCELLED
    flagged = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.RUNNING, Job.cancel_requested == false())
        .values(cancel_requested=True)
    ).rowcount  # type: ignore[attr-defined]
    if flagged:
        append_event(session, job_id, EventKind.CANCEL_REQUESTED, {})
        return JobStatus.RUNNING
    running = session.scalar(
        select(func.count()).where(Job.id == job_id, Job.status == JobStatus.RUNNING)
    )
    return JobStatus.RUNNING if running else None
