"""Training jobs: submit, list and find, inspect, label, read their metrics, cancel, retry and
delete."""

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Response

from app.api.deps import (
    JobDep,
    JobIdPath,
    SessionDep,
    SettingsDep,
    StoreDep,
    WriteJobDep,
    WriteSessionDep,
)
from app.errors import Conflict, ErrorOut, NotFound
from app.jobs import removal, submission
from app.jobs.config import JobCreate
from app.jobs.fields import COUNT_MAX, DatasetName, ModelName
from app.jobs.labels import NAME_MAX_CHARS, LabelsPatch, relabel_job
from app.jobs.listing import TAG_FILTERS_MAX, JobFilter, JobSort, TagFilter, find_jobs
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
    "fast94": {
        "summary": "fast_cnn with the airbench paper's recipe",
        "value": {"recipe": "fast94"},
    },
    "fine_tune": {
        "summary": "Fine-tune the production CIFAR-10 model's head on an uploaded dataset",
        "value": {
            "init_from": {"model": "cifar10", "alias": "production"},
            "dataset": "ds-0123456789ab",
            "freeze": "backbone",
            "epochs": 3,
        },
    },
    "labelled": {
        "summary": "A named, tagged trial",
        "value": {
            "name": "lr 0.01",
            "tags": {"sweep": "learning-rate"},
            "notes": "Ten times the tutorial's learning rate.",
            "learning_rate": 0.01,
        },
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
        404: {
            "model": ErrorOut,
            "description": "The job names a dataset, or init_from a model, version, alias or "
            "weights file, that does not exist.",
        },
        409: {
            "model": ErrorOut,
            "description": "The Idempotency-Key was used with another body, or the job's "
            "dataset is not ready.",
        },
        422: {
            "model": ErrorOut,
            "description": "A field is unknown, mistyped or out of range, or init_from's "
            "weights do not fit the model.",
        },
    },
    summary="Submit a training job",
)
def submit_job(
    session: WriteSessionDep,
    settings: SettingsDep,
    store: StoreDep,
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
        store=store,
    )
    # Read inside the write transaction: another one after commit would queue for the lock.
    view = job_view(session, settings.lease_seconds, submitted.job)
    session.commit()
    if submitted.replayed:
        response.status_code = 200
    else:
        response.headers["Location"] = f"/jobs/{view.id}"
    return view


@router.get(
    "",
    response_model=JobList,
    responses={422: {"model": ErrorOut, "description": "A filter or the sort is not valid."}},
    summary="List and find jobs",
)
def list_jobs(
    session: SessionDep,
    settings: SettingsDep,
    status: Annotated[
        list[JobStatus] | None, Query(description="Only jobs with this status (repeatable: any).")
    ] = None,
    name: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=NAME_MAX_CHARS,
            description="Only jobs whose name holds this text, in any case.",
        ),
    ] = None,
    tag: Annotated[
        list[TagFilter] | None,
        Query(
            max_length=TAG_FILTERS_MAX,
            description='"key:value": only jobs with this tag and value; "key": with this tag, '
            "whatever its value. Repeatable: every one must match.",
        ),
    ] = None,
    model: Annotated[ModelName | None, Query(description="Only jobs training this net.")] = None,
    dataset: Annotated[
        DatasetName | None,
        Query(
            description='Only jobs on this dataset: "cifar10" or an uploaded one\'s id.',
        ),
    ] = None,
    sort: Annotated[
        JobSort,
        Query(
            description="created_at: oldest first; -created_at: newest first; test_accuracy: "
            "lowest first; -test_accuracy: highest first. Jobs with no accuracy come last."
        ),
    ] = "-created_at",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=COUNT_MAX)] = 0,
) -> JobList:
    """Jobs newest first, or in `sort`'s order; every filter given narrows the list, and `total`
    counts all the jobs it matches."""
    found = JobFilter(
        statuses=status or (), name=name, tags=tag or (), model=model, dataset=dataset
    )
    jobs, total = find_jobs(session, found, sort, limit, offset)
    return JobList(items=job_views(session, settings.lease_seconds, jobs), total=total)


@router.get("/{job_id}", response_model=JobOut, responses=NOT_FOUND, summary="Get one job")
def get_job(session: SessionDep, settings: SettingsDep, job: JobDep) -> JobOut:
    """The job's status, progress and result; for a queued job, why it waits if no live worker
    can run it."""
    return job_view(session, settings.lease_seconds, job)


@router.patch(
    "/{job_id}",
    response_model=JobOut,
    responses={
        422: {"model": ErrorOut, "description": "A field is unknown, mistyped or too long."},
        **NOT_FOUND,
    },
    summary="Name, tag or annotate a job",
)
def label_job(
    session: WriteSessionDep, settings: SettingsDep, job_id: JobIdPath, patch: LabelsPatch
) -> JobOut:
    """Change the job's name, tags or notes, whatever its status: a field left out stays as it
    is, null clears it, and `tags` replaces all the job's tags."""
    job = relabel_job(session, job_id, patch)
    view = job_view(session, settings.lease_seconds, job)
    session.commit()  # before the answer: a client that reads it back sees the change
    return view


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
def delete_job(session: WriteSessionDep, store: StoreDep, job_id: JobIdPath) -> Response:
    """Its rows (loss history, epochs, events) and its files go. Refused while it is queued or
    running, and while a registered model version serves its model."""
    removal.delete_job(session, job_id)
    session.commit()
    removal.remove_job_files(store, job_id)
    return Response(status_code=204)
