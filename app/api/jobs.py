"""Training jobs: submit, list, inspect, and read their metrics."""

import hashlib
import json
import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Response
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.api.datasets import check_usable
from app.api.deps import JobDep, JobIdPath, SessionDep, SettingsDep, WriteJobDep, WriteSessionDep
from app.errors import Conflict, NotFound
from app.jobs.placement import waiting_reason
from app.jobs.transitions import create_job, request_cancel
from app.jobs.worker_registry import most_gpus_live
from app.models import Job, JobStatus
from app.schemas import (
    COUNT_MAX,
    SEED_MAX,
    EpochOut,
    ErrorOut,
    JobCreate,
    JobList,
    JobOut,
    LossPointOut,
    MetricsOut,
    Progress,
)
from app.settings import Settings

router = APIRouter(prefix="/jobs", tags=["jobs"])

SUBMIT_EXAMPLES: dict[str, Any] = {
    "tutorial": {"summary": "The CIFAR-10 tutorial (all defaults)", "value": {}},
    "quick": {
        "summary": "A quick run on a subset",
        "value": {"epochs": 1, "max_train_samples": 5000, "max_test_samples": 1000, "seed": 7},
    },
    "adam": {
        "summary": "Adam with larger batches",
        "value": {"optimizer": "adam", "learning_rate": 0.001, "batch_size": 64, "epochs": 5},
    },
    "fast": {
        "summary": "The fast recipe (about 64% in 6 epochs), with two more epochs",
        "value": {"recipe": "fast", "epochs": 8},
    },
}

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No job with this id."}
}


def job_outs(session: Session, settings: Settings, jobs: list[Job]) -> list[JobOut]:
    """The public view of job rows, saying why a queued one waits when no worker can run it."""
    queued = any(job.status == JobStatus.QUEUED for job in jobs)
    most_gpus = most_gpus_live(session, settings.lease_seconds) if queued else None
    return [job_out(job, waiting_reason(job.status, job.gpus_needed, most_gpus)) for job in jobs]


def job_view(session: Session, settings: Settings, job: Job) -> JobOut:
    """The public view of one job row (see job_outs)."""
    return job_outs(session, settings, [job])[0]


def job_out(job: Job, waiting: str | None = None) -> JobOut:
    """The public view of a job row."""
    return JobOut(
        id=job.id,
        status=JobStatus(job.status),
        config=job.config,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        progress=Progress(
            epoch=job.progress_epoch,
            epochs=job.config["epochs"],
            step=job.progress_step,
            steps_per_epoch=job.steps_per_epoch,
        ),
        device=job.device,
        error=job.error,
        test_accuracy=job.test_accuracy,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        heartbeat_at=job.heartbeat_at,
        cancel_requested=job.cancel_requested,
        retry_of=job.retry_of,
        waiting_reason=waiting,
    )


@router.post(
    "",
    status_code=202,
    response_model=JobOut,
    responses={
        200: {"model": JobOut, "description": "Idempotent replay: the job made for this key."},
        404: {"model": ErrorOut, "description": "The job names a dataset that does not exist."},
        409: {
            "model": ErrorOut,
            "description": "The Idempotency-Key was used with another body, or the job's "
            "dataset is not ready.",
        },
        422: {"model": ErrorOut, "description": "A field is unknown, mistyped or out of range."},
    },
    summary="Submit a training job",
)
def submit_job(
    session: WriteSessionDep,
    settings: SettingsDep,
    response: Response,
    spec: Annotated[JobCreate | None, Body(openapi_examples=SUBMIT_EXAMPLES)] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            min_length=1,
            max_length=200,
            description="Send the same key again to get the same job back instead of a new one.",
        ),
    ] = None,
) -> JobOut:
    """Queue a job; every field is optional and the defaults reproduce the tutorial."""
    spec = spec or JobCreate()
    if spec.dataset != "cifar10":
        check_usable(session, spec.dataset, spec.model)
    fingerprint = request_fingerprint(spec) if idempotency_key else None
    if idempotency_key:
        existing = find_idempotent(session, idempotency_key, fingerprint)
        if existing is not None:
            response.status_code = 200
            return job_view(session, settings, existing)
    config = spec.resolved()
    if config["seed"] is None:
        config["seed"] = secrets.randbelow(SEED_MAX + 1)
    try:
        job = create_job(
            session,
            config,
            max_attempts=settings.max_attempts,
            idempotency_key=idempotency_key,
            request_fingerprint=fingerprint,
        )
        # Read inside the write transaction: another one after commit would queue for the lock.
        view = job_view(session, settings, job)
        session.commit()
    except IntegrityError:
        # Another request with the same key won the race; answer with its job.
        session.rollback()
        assert idempotency_key is not None
        existing = find_idempotent(session, idempotency_key, fingerprint)
        if existing is None:
            raise
        response.status_code = 200
        return job_view(session, settings, existing)
    response.headers["Location"] = f"/jobs/{job.id}"
    return view


@router.get("", response_model=JobList, summary="List jobs, newest first")
def list_jobs(
    session: SessionDep,
    settings: SettingsDep,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=COUNT_MAX)] = 0,
) -> JobList:
    """Jobs newest first, optionally only those with one status."""
    query = select(Job)
    count = select(func.count()).select_from(Job)
    if status is not None:
        query = query.where(Job.status == status)
        count = count.where(Job.status == status)
    jobs = session.scalars(query.order_by(Job.id.desc()).limit(limit).offset(offset)).all()
    return JobList(items=job_outs(session, settings, list(jobs)), total=session.scalar(count) or 0)


@router.get("/{job_id}", response_model=JobOut, responses=NOT_FOUND, summary="Get one job")
def get_job(session: SessionDep, settings: SettingsDep, job: JobDep) -> JobOut:
    """The job's status, progress and result; for a queued job, why it waits if no live worker
    can run it."""
    return job_view(session, settings, job)


@router.get(
    "/{job_id}/metrics", response_model=MetricsOut, responses=NOT_FOUND, summary="Job metrics"
)
def get_metrics(job: JobDep) -> MetricsOut:
    """Loss history, per-epoch results and test-set metrics; partial while the job runs."""
    return MetricsOut(
        job_id=job.id,
        status=JobStatus(job.status),
        best_epoch=job.best_epoch,
        classes=job.classes,
        loss_history=[
            LossPointOut(epoch=p.epoch, step=p.step, loss=p.loss) for p in job.loss_points
        ],
        epochs=[
            EpochOut(
                epoch=e.epoch,
                train_loss=e.train_loss,
                test_loss=e.test_loss,
                test_accuracy=e.test_accuracy,
                elapsed_s=e.elapsed_s,
                validation_loss=e.validation_loss,
                validation_accuracy=e.validation_accuracy,
            )
            for e in job.epoch_results
        ],
        test_accuracy=job.test_accuracy,
        per_class_accuracy=job.per_class_accuracy,
        confusion_matrix=job.confusion_matrix,
    )


@router.post(
    "/{job_id}/cancel",
    response_model=JobOut,
    responses={
        202: {"model": JobOut, "description": "Running: its worker stops it within seconds."},
        409: {"model": ErrorOut, "description": "The job has already finished."},
        **NOT_FOUND,
    },
    summary="Cancel a job",
)
def cancel_job(
    session: WriteSessionDep, settings: SettingsDep, job_id: JobIdPath, response: Response
) -> JobOut:
    """A queued job is cancelled at once (200); a running one is stopped by its worker (202)."""
    outcome = request_cancel(session, job_id)
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    session.refresh(job)
    view = job_view(session, settings, job)
    session.commit()  # one write transaction for the whole request: no second wait for the lock
    if outcome is None:
        raise Conflict(f"job {job_id} has already finished (its status is {job.status})")
    if outcome == JobStatus.RUNNING:
        response.status_code = 202
    return view


@router.post(
    "/{job_id}/retry",
    status_code=202,
    response_model=JobOut,
    responses={
        409: {"model": ErrorOut, "description": "Only failed or cancelled jobs are retried."},
        **NOT_FOUND,
    },
    summary="Retry a failed or cancelled job",
)
def retry_job(
    session: WriteSessionDep, settings: SettingsDep, job: WriteJobDep, response: Response
) -> JobOut:
    """Queue a new job with the same config; its `retry_of` names this one."""
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise Conflict(
            f"job {job.id} is {job.status}; only failed or cancelled jobs can be retried"
        )
    retry = create_job(
        session, dict(job.config), max_attempts=settings.max_attempts, retry_of=job.id
    )
    view = job_view(session, settings, retry)
    session.commit()
    response.headers["Location"] = f"/jobs/{retry.id}"
    return view


def request_fingerprint(spec: JobCreate) -> str:
    """A digest of the fields the client sent, to recognise a repeated submission."""
    canonical = json.dumps(spec.model_dump(exclude_unset=True), sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_idempotent(session: Session, key: str, fingerprint: str | None) -> Job | None:
    """The job made earlier with this Idempotency-Key; 409 if its body differed."""
    job = session.scalars(select(Job).where(Job.idempotency_key == key)).first()
    if job is not None and job.request_fingerprint != fingerprint:
        raise Conflict(
            f"Idempotency-Key {key!r} was already used for job {job.id} with a different body"
        )
    return job
