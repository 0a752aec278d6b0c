"""Jobs as the API shows them: the row's fields, its tags, and why a queued job waits."""

from sqlalchemy.orm import Session

from app.jobs.labels import tags_of
from app.jobs.placement import waiting_reason
from app.jobs.schemas import JobOut
from app.jobs.worker_registry import most_gpus_live
from app.models import Job, JobStatus


def job_views(session: Session, lease_seconds: float, jobs: list[Job]) -> list[JobOut]:
    """The public view of job rows, saying why a queued one waits when no worker can run it."""
    queued = any(job.status == JobStatus.QUEUED for job in jobs)
    most_gpus = most_gpus_live(session, lease_seconds) if queued else None
    tags = tags_of(session, [job.id for job in jobs])
    return [
        JobOut.model_validate(job).model_copy(
            update={
                "tags": tags.get(job.id, {}),
                "waiting_reason": waiting_reason(job.status, job.gpus_needed, most_gpus),
            }
        )
        for job in jobs
    ]


def job_view(session: Session, lease_seconds: float, job: Job) -> JobOut:
    """The public view of one job row (see job_views)."""
    return job_views(session, lease_seconds, [job])[0]
