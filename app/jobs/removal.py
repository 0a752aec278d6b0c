"""Deleting a finished job: its rows and its files, never a model a registered version serves."""

import logging

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.errors import Conflict, NotFound
from app.jobs.events import FINISHED
from app.jobs.files import job_prefix
from app.models import Job, ModelVersion, RegisteredModel
from app.storage.store import ArtifactStore, StoreError

log = logging.getLogger("trainserve.api")


def delete_job(session: Session, job_id: int) -> None:
    """Delete the job's rows (its loss points, epochs and events with it) in the caller's write
    transaction; 409 while it is queued or running, or while a model version serves its model.
    The caller removes its files (remove_job_files) once that transaction has committed."""
    job = session.get(Job, job_id, with_for_update=True)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    if job.status not in FINISHED:
        raise Conflict(
            f"job {job_id} is {job.status}: cancel it first (POST /jobs/{job_id}/cancel)"
        )
    versions = session.execute(
        select(RegisteredModel.name, ModelVersion.version)
        .join(RegisteredModel, RegisteredModel.id == ModelVersion.model_id)
        .where(ModelVersion.job_id == job_id)
        .order_by(RegisteredModel.name, ModelVersion.version)
    ).all()
    if versions:
        raise Conflict(
            _registered_message(job_id, [f"{name} v{number}" for name, number in versions])
        )
    session.delete(job)
    try:
        session.flush()
    except IntegrityError:
        # A version was registered from it in the meantime (the foreign key refuses).
        session.rollback()
        raise Conflict(_registered_message(job_id, ["a model version"])) from None


def remove_job_files(store: ArtifactStore, job_id: int) -> None:
    """Remove the deleted job's files from the artifact store; what fails, the sweep removes."""
    try:
        store.delete_prefix(job_prefix(job_id))
    except (StoreError, OSError) as exc:
        log.warning("job %s was deleted but its files were not: %s", job_id, exc)


def _registered_message(job_id: int, versions: list[str]) -> str:
    return (
        f"job {job_id}'s model is registered as {', '.join(versions)}: delete those versions "
        "first (DELETE /models/{name}/versions/{version})"
    )
