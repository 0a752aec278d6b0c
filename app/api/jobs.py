"""Training jobs: submit, list, inspect, read their metrics, cancel, retry and delete."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Response
from sqlalchemy import func, select

from app.api.deps import JobDep, JobIdPath, SessionDep, SettingsDep, WriteJobDep, WriteSessionDep
from app.errors import Conflict, ErrorOut, NotFound
from app.jobs import removal, submission
from app.jobs.config import JobCreate
from app.jobs.fields import COUNT_MAX
from app.jobs.schemas import JobList, JobOut, MetricsOut
from app.jobs.transitions import request_cancel
from app.jobs.views import job_view, job_views
from app.models import Job, JobStatus

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
    submitted = submission.submit_job(
        session,
        spec or JobCreate(),
        max_attempts=settings.max_attempts,
        idempotency_key=idempotency_key,
    )
    # Read inside the write transaction: another one after commit would queue for the lock.
    view = job_view(session, settings.lease_seconds, submitted.job)
    session.commit()
    if submitted.replayed:
        response.status_code = 200
    else:
        response.headers["Location"] = f"/jobs/{view.id}"
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
    views = job_views(session, settings.lease_seconds, list(jobs))
    return JobList(items=views, total=session.scalar(count) or 0)


@router.get("/{job_id}", response_model=JobOut, responses=NOT_FOUND, summary="Get one job")
def get_job(session: SessionDep, settings: SettingsDep, job: JobDep) -> JobOut:
    """The job's status, progress and result; for a queued job, why it waits if no live worker
    can run it."""
    return job_view(session, settings.lease_seconds, job)


@router.get(
    "/{job_id}/metrics", response_model=MetricsOut, responses=NOT_FOUND, summary="Job metrics"
)
def get_metrics(job: JobDep) -> MetricsOut:
    """Loss history, per-epoch results and test-set metrics; partial while the job runs."""
    return MetricsOut.model_validate(job)


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
    view = job_view(session, settings.lease_seconds, job)
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
    retry = submission.retry_job(session, job, max_attempts=settings.max_attempts)
    view = job_view(session, settings.lease_seconds, retry)
    session.commit()
    response.headers["Location"] = f"/jobs/{retry.id}"
    return view


@router.delete(
    "/{job_id}",
    status_code=204,
    responses={
        409: {
            "model": ErrorOut,
            "description": "The job is queued or running, or a model version serves its model.",
        },
        **NOT_FOUND,
    },
    summary="Delete a finished job",
)
def delete_job(session: WriteSessionDep, settings: SettingsDep, job_id: JobIdPath) -> Response:
    """Its rows (loss history, epochs, events) and its files go. Refused while it is queued or
    running, and while a registered model version serves its model."""
    removal.delete_job(session, job_id)
    session.commit()
    removal.remove_job_files(settings.artifacts_dir, job_id)
    return Response(status_code=204)
