"""Training jobs: submit, list, inspect, and read their metrics."""

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response
from sqlalchemy import func, select

from app.api.deps import JobDep, SessionDep
from app.models import Job, JobStatus
from app.queue import create_job
from app.schemas import (
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

router = APIRouter(prefix="/jobs", tags=["jobs"])

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No job with this id."}
}


def job_out(job: Job) -> JobOut:
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
    )


@router.post(
    "",
    status_code=202,
    response_model=JobOut,
    responses={
        422: {"model": ErrorOut, "description": "A field is unknown, mistyped or out of range."}
    },
    summary="Submit a training job",
)
def submit_job(
    session: SessionDep,
    response: Response,
    spec: Annotated[
        JobCreate | None,
        Body(
            openapi_examples={
                "tutorial": {"summary": "The CIFAR-10 tutorial (all defaults)", "value": {}},
                "quick": {
                    "summary": "A quick run on a subset",
                    "value": {
                        "epochs": 1,
                        "max_train_samples": 5000,
                        "max_test_samples": 1000,
                        "seed": 7,
                    },
                },
                "adam": {
                    "summary": "Adam with larger batches",
                    "value": {
                        "optimizer": "adam",
                        "learning_rate": 0.001,
                        "batch_size": 64,
                        "epochs": 5,
                    },
                },
            }
        ),
    ] = None,
) -> JobOut:
    """Queue a job; every field is optional and the defaults reproduce the tutorial."""
    config = (spec or JobCreate()).model_dump()
    if config["seed"] is None:
        config["seed"] = secrets.randbelow(SEED_MAX + 1)
    job = create_job(session, config)
    session.commit()
    response.headers["Location"] = f"/jobs/{job.id}"
    return job_out(job)


@router.get("", response_model=JobList, summary="List jobs, newest first")
def list_jobs(
    session: SessionDep,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JobList:
    """Jobs newest first, optionally only those with one status."""
    query = select(Job)
    count = select(func.count()).select_from(Job)
    if status is not None:
        query = query.where(Job.status == status)
        count = count.where(Job.status == status)
    jobs = session.scalars(query.order_by(Job.id.desc()).limit(limit).offset(offset)).all()
    return JobList(items=[job_out(job) for job in jobs], total=session.scalar(count) or 0)


@router.get("/{job_id}", response_model=JobOut, responses=NOT_FOUND, summary="Get one job")
def get_job(job: JobDep) -> JobOut:
    """The job's status, progress and result."""
    return job_out(job)


@router.get(
    "/{job_id}/metrics", response_model=MetricsOut, responses=NOT_FOUND, summary="Job metrics"
)
def get_metrics(job: JobDep) -> MetricsOut:
    """Loss history, per-epoch results and test-set metrics; partial while the job runs."""
    return MetricsOut(
        job_id=job.id,
        status=JobStatus(job.status),
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
            )
            for e in job.epoch_results
        ],
        test_accuracy=job.test_accuracy,
        per_class_accuracy=job.per_class_accuracy,
        confusion_matrix=job.confusion_matrix,
    )
