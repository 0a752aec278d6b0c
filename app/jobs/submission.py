"""Submitting jobs: a request resolved to its config and queued with its labels once, however
often it is sent with the same Idempotency-Key; a retry queued as a new job with the same config
and labels."""

import hashlib
import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.datasets.usage import check_usable
from app.errors import Conflict
from app.jobs import fine_tuning
from app.jobs.architectures import check_fits
from app.jobs.config import JobConfig, JobCreate
from app.jobs.labels import labels_of, write_labels
from app.jobs.transitions import create_job
from app.ml.cifar10 import IMAGE_SHAPE
from app.models import Job, JobStatus
from app.storage.store import ArtifactStore

CIFAR10_IMAGE_PX = IMAGE_SHAPE[-1]


@dataclass(frozen=True)
class Submitted:
    job: Job
    replayed: bool  # an earlier request with the same Idempotency-Key made it


def submit_job(
    session: Session,
    spec: JobCreate,
    *,
    max_attempts: int,
    idempotency_key: str | None,
    store: ArtifactStore,
) -> Submitted:
    """Queue the job `spec` asks for, or find the one an earlier request with the same key made.
    A fine-tuning job's parent is read from `store` (a version's model file) before `session`'s
    transaction begins, so that no download holds the database's write lock.

    Runs in the caller's write transaction, which the caller commits (a lost race for the key
    rolls back what it had written).
    """
    read = fine_tuning.read_parent_model(store, spec.init_from)
    config = _resolved(session, spec, store, read)
    fingerprint = request_fingerprint(spec) if idempotency_key else None
    if idempotency_key:
        existing = find_idempotent(session, idempotency_key, fingerprint)
        if existing is not None:
            return Submitted(existing, replayed=True)
    try:
        job = create_job(
            session,
            config,
            max_attempts=max_attempts,
            idempotency_key=idempotency_key,
            request_fingerprint=fingerprint,
        )
    except IntegrityError:
        # Another request with the same key won the race (PostgreSQL; SQLite's write lock
        # serialises them): answer with its job.
        session.rollback()
        assert idempotency_key is not None
        existing = find_idempotent(session, idempotency_key, fingerprint)
        if existing is None:
            raise
        return Submitted(existing, replayed=True)
    write_labels(session, job, spec.labels())
    return Submitted(job, replayed=False)


def _resolved(
    session: Session,
    spec: JobCreate,
    store: ArtifactStore,
    read: fine_tuning.ParentModelFile | None,
) -> JobConfig:
    """The job's config, refused (4xx) when it cannot train: its dataset, its architecture on
    that dataset, and what it starts from (app/jobs/fine_tuning.py)."""
    parent = None
    if spec.init_from is not None:
        parent = fine_tuning.find_parent(session, store, spec.init_from, read)
        spec = fine_tuning.with_parent_model(spec, parent)
    config = spec.resolved(None if parent is None else parent.resolved)
    fine_tuning.check_options(config)
    if config.dataset == "cifar10":
        check_fits(config, config.dataset, CIFAR10_IMAGE_PX)
    elif (image_px := check_usable(session, config.dataset, config.model)) is not None:
        check_fits(config, config.dataset, image_px)
    if parent is not None:
        target = fine_tuning.dataset_target(session, config.dataset)
        fine_tuning.check_parent_fits(parent, config, target)
    return config


def retry_job(session: Session, job: Job, *, max_attempts: int) -> Job:
    """Queue a new job with the config of a failed or cancelled one; its retry_of names it."""
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise Conflict(
            f"job {job.id} is {job.status}; only failed or cancelled jobs can be retried"
        )
    config = JobConfig.from_stored(job.config)
    retry = create_job(session, config, max_attempts=max_attempts, retry_of=job.id)
    write_labels(session, retry, labels_of(session, job))
    return retry


def request_fingerprint(spec: JobCreate) -> str:
    """A digest of the fields the client sent, to recognise a repeated submission. The labels
    count: the same key with another name is another body (409), not the first job under a name
    it does not have."""
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
