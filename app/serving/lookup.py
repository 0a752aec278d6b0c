"""Which job's model answers a prediction, looked up without a database query per request."""

import threading
import time
from dataclasses import dataclass

from sqlalchemy import select

from app.db import session_scope
from app.errors import Conflict, NotFound, Unavailable
from app.models import Job, JobStatus

DEFAULT_JOB_TTL_S = 1.0
TABLE_MODEL = "mlp"


@dataclass(frozen=True)
class ServedJob:
    job_id: int
    model_path: str
    model_sha256: str | None


class ServingJobs:
    """Finds the job whose model serves a request.

    A succeeded job never changes, so named ones are remembered; the default (the most recently
    finished succeeded job) is looked up again at most once a second, which is how quickly a
    newly trained model takes over.
    """

    def __init__(self, default_ttl_s: float = DEFAULT_JOB_TTL_S) -> None:
        self.default_ttl_s = default_ttl_s
        self._default: tuple[float, ServedJob] | None = None
        self._named: dict[int, ServedJob] = {}
        self._lock = threading.Lock()

    def cached(self, job_id: int | None) -> ServedJob | None:
        """The served job if it is known without a query, else None (non-blocking)."""
        with self._lock:
            if job_id is not None:
                return self._named.get(job_id)
            if self._default and time.monotonic() - self._default[0] < self.default_ttl_s:
                return self._default[1]
            return None

    def find(self, job_id: int | None) -> ServedJob:
        """The served job for `job_id`, or the default one; blocking (it may query)."""
        known = self.cached(job_id)
        if known is not None:
            return known
        started = time.monotonic()
        if job_id is None:
            return self.remember_default(started, _latest_succeeded())
        found = _named_job(job_id)
        with self._lock:
            self._named[job_id] = found
        return found

    def remember_default(self, started: float, found: ServedJob) -> ServedJob:
        """Keep what a default lookup begun at `started` found; the job to answer with.

        Lookups run concurrently: one that began earlier may have seen an older model. It
        neither replaces nor answers instead of what a later lookup already found.
        """
        with self._lock:
            if self._default is not None and self._default[0] > started:
                return self._default[1]
            self._default = (started, found)
            return found


def _served(job: Job) -> ServedJob:
    assert job.model_path is not None
    return ServedJob(job.id, job.model_path, job.model_sha256)


def _latest_succeeded() -> ServedJob:
    with session_scope() as session:
        job = session.scalars(
            select(Job)
            .where(
                Job.status == JobStatus.SUCCEEDED,
                Job.model_path.is_not(None),
                # The default answers images: a model trained on a table takes rows instead.
                Job.config["model"].as_string() != TABLE_MODEL,
            )
            .order_by(Job.finished_at.desc(), Job.id.desc())
            .limit(1)
        ).first()
        if job is None:
            raise Unavailable("no trained model yet: submit a job with POST /jobs and wait for it")
        return _served(job)


def _named_job(job_id: int) -> ServedJob:
    with session_scope() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        if job.status != JobStatus.SUCCEEDED or job.model_path is None:
            raise Conflict(f"job {job_id} has no trained model (its status is {job.status})")
        return _served(job)
