"""Which model answers a prediction: a job's, or a registered model's version (by alias or
number), looked up without a database query per request."""

import asyncio
import contextvars
import copy
import threading
import time
from dataclasses import dataclass

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from app.db import session_scope
from app.errors import Conflict, InvalidInput, NotFound, Unavailable
from app.models import Job, JobStatus, ModelAlias, ModelVersion, RegisteredModel
from app.registry.names import PRODUCTION

# How long a lookup is trusted: an alias move (or a deletion) reaches every server process
# this fast.
LOOKUP_TTL_S = 1.0


@dataclass(frozen=True)
class Target:
    """What a request asks to be answered by: a job, or a model at an alias or a version (the
    default model at production when it names nothing)."""

    job_id: int | None = None
    model: str | None = None
    alias: str | None = None
    version: int | None = None

    def __post_init__(self) -> None:
        if self.job_id is not None and (self.model or self.alias or self.version is not None):
            raise InvalidInput("job_id: give either job_id or model (with alias or version)")
        if self.alias is not None and self.version is not None:
            raise InvalidInput("alias: give either alias or version, not both")


@dataclass(frozen=True)
class ServedModel:
    job_id: int
    model_path: str
    model_sha256: str | None
    model: str | None = None  # the registered model and version; None when named by job_id
    version: int | None = None

    @property
    def label(self) -> str:
        """How errors name it: "model cifar10 v3 (job 12)" or "job 12"."""
        if self.model is None:
            return f"job {self.job_id}"
        return f"model {self.model} v{self.version} (job {self.job_id})"


class ServingJobs:
    """Finds the model that serves a request.

    What a request names is looked up again at most once a second: an alias moves, and a
    version or a job can be deleted.
    """

    def __init__(self, default_model: str, ttl_s: float = LOOKUP_TTL_S) -> None:
        self.default_model = default_model
        self.ttl_s = ttl_s
        self._found: dict[Target, tuple[float, ServedModel]] = {}
        self._lock = threading.Lock()
        # The query each target is looked up by now, and when it began.
        self._finding: dict[Target, tuple[float, asyncio.Task[ServedModel]]] = {}

    def cached(self, target: Target) -> ServedModel | None:
        """The model for `target` if it is known without a query, else None (non-blocking)."""
        with self._lock:
            found = self._found.get(target)
        if found is None:
            return None
        found_at, served = found
        return served if time.monotonic() - found_at < self.ttl_s else None

    async def find_once(self, target: Target) -> ServedModel:
        """The model for `target`, from the event loop: cached, or looked up on a thread by one
        query that every request asking for it meanwhile waits for. (Once a second, when the
        lookup expired, each request in flight at 64 connections had run its own query.)

        A query is joined only within the TTL of its start, so no answer is older than that;
        each waiter gets its own copy of the query's error."""
        known = self.cached(target)
        if known is not None:
            return known
        query = self._shared_query(target)
        # Waited for, not awaited: a request that goes away does not cancel the query the
        # others wait for, and each one raises its own exception, not one shared object.
        await asyncio.wait({query})
        if query.cancelled():  # stopped by the loop's shutdown: this request queries itself
            return await run_in_threadpool(self.find, target)
        error = query.exception()
        if error is not None:
            raise _own_copy(error)
        return query.result()

    def _shared_query(self, target: Target) -> asyncio.Task[ServedModel]:
        """The query for `target` begun within the TTL, or a new one."""
        now = time.monotonic()
        begun = self._finding.get(target)
        if begun is not None and now - begun[0] < self.ttl_s:
            return begun[1]
        # A context of its own: it runs for every request waiting, not the one that began it
        # (whose request id would otherwise be on its log lines).
        query = asyncio.get_running_loop().create_task(
            run_in_threadpool(self.find, target), context=contextvars.Context()
        )
        self._finding[target] = (now, query)
        query.add_done_callback(lambda done: self._found_by(target, done))
        return query

    def _found_by(self, target: Target, done: asyncio.Task[ServedModel]) -> None:
        begun = self._finding.get(target)
        if begun is not None and begun[1] is done:  # not a newer query that replaced it
            del self._finding[target]
        if not done.cancelled():
            done.exception()  # retrieved here too: every waiter may have gone away

    def find(self, target: Target) -> ServedModel:
        """The model for `target`; blocking (it may query)."""
        known = self.cached(target)
        if known is not None:
            return known
        started = time.monotonic()
        if target.job_id is not None:
            found = _named_job(target.job_id)
        else:
            found = _registered(
                target.model or self.default_model,
                target.alias,
                target.version,
                is_default=target == Target(),
            )
        return self.remember(target, started, found)

    def remember(self, target: Target, started: float, found: ServedModel) -> ServedModel:
        """Keep what a lookup begun at `started` found; the model to answer with.

        Lookups run concurrently: one that began earlier may have seen an alias before it
        moved. It neither replaces nor answers instead of what a later lookup already found.
        """
        with self._lock:
            known = self._found.get(target)
            if known is not None and known[0] > started:
                return known[1]
            self._found[target] = (started, found)
            return found


def _own_copy(error: BaseException) -> BaseException:
    """A copy of a shared query's error for one waiter (with the query's traceback), so that
    raising it in one request does not change what another raises; the error itself where it
    cannot be copied."""
    try:
        mine = copy.copy(error)
    except Exception:
        return error
    mine.__cause__, mine.__context__ = error.__cause__, error.__context__
    return mine.with_traceback(error.__traceback__)


def _named_job(job_id: int) -> ServedModel:
    with session_scope() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise NotFound(f"job {job_id} not found")
        if job.status != JobStatus.SUCCEEDED or job.model_path is None:
            raise Conflict(f"job {job_id} has no trained model (its status is {job.status})")
        return ServedModel(job.id, job.model_path, job.model_sha256)


def _registered(name: str, alias: str | None, number: int | None, is_default: bool) -> ServedModel:
    """The version of model `name` that `number` or `alias` (default production) names."""
    with session_scope() as session:
        model_id = session.scalar(select(RegisteredModel.id).where(RegisteredModel.name == name))
        if model_id is None:
            if is_default:
                raise Unavailable(
                    f"no model is registered as {name!r} yet: train one with POST /jobs "
                    "(CIFAR-10 jobs register as 'cifar10'), or register a job's model with "
                    f"POST /models/{name}/versions"
                )
            raise NotFound(f"model {name!r} not found (GET /models lists them)")
        if number is None:
            number = session.scalar(
                select(ModelAlias.version).where(
                    ModelAlias.model_id == model_id, ModelAlias.alias == (alias or PRODUCTION)
                )
            )
            if number is None:
                message = f"model {name!r} has no alias {alias or PRODUCTION!r}"
                if is_default:
                    raise Unavailable(
                        f"{message} yet: promote a version with "
                        f"PUT /models/{name}/aliases/{PRODUCTION}"
                    )
                raise NotFound(message)
        version = session.scalars(
            select(ModelVersion).where(
                ModelVersion.model_id == model_id, ModelVersion.version == number
            )
        ).first()
        if version is None:
            raise NotFound(f"model {name!r} has no version {number}")
        return ServedModel(
            version.job_id, version.model_path, version.model_sha256, name, version.version
        )
