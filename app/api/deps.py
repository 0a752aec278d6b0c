"""Annotated dependencies shared by the routes."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from sqlalchemy.orm import Session

from app.db import session_scope
from app.errors import NotFound
from app.jobs.event_hub import EventHub
from app.models import JOB_ID_MAX, Job
from app.registry.names import VERSION_MAX, Name
from app.serving.lookup import Target
from app.serving.schemas import TOP_K_MAX
from app.serving.service import Predictions
from app.settings import Settings, get_settings
from app.storage.config import get_store
from app.storage.store import ArtifactStore


def _session() -> Iterator[Session]:
    with session_scope() as session:
        yield session


def _write_session() -> Iterator[Session]:
    with session_scope(write=True) as session:
        yield session


async def _settings() -> Settings:
    # async: get_settings is cached, and a plain def dependency costs a thread hop per request.
    return get_settings()


SessionDep = Annotated[Session, Depends(_session)]
WriteSessionDep = Annotated[Session, Depends(_write_session)]
SettingsDep = Annotated[Settings, Depends(_settings)]
StoreDep = Annotated[ArtifactStore, Depends(get_store)]


JobIdPath = Annotated[int, Path(ge=1, le=JOB_ID_MAX)]


def _find_job(session: Session, job_id: int) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound(f"job {job_id} not found")
    return job


def _job(session: SessionDep, job_id: JobIdPath) -> Job:
    return _find_job(session, job_id)


def _write_job(session: WriteSessionDep, job_id: JobIdPath) -> Job:
    return _find_job(session, job_id)


JobDep = Annotated[Job, Depends(_job)]
WriteJobDep = Annotated[Job, Depends(_write_job)]


async def _predictions(request: Request) -> Predictions:
    # async: nothing here blocks, and a plain def would cost every prediction a thread hop.
    predictions: Predictions = request.app.state.predictions
    return predictions


PredictionsDep = Annotated[Predictions, Depends(_predictions)]


async def _event_hub(request: Request) -> EventHub:
    hub: EventHub = request.app.state.event_hub
    return hub


EventHubDep = Annotated[EventHub, Depends(_event_hub)]


async def _target(
    job_id: Annotated[
        int | None, Query(ge=1, le=JOB_ID_MAX, description="Answer with this job's model.")
    ] = None,
    model: Annotated[
        Name | None,
        Query(
            description="Answer with this registered model, at its production alias unless "
            "alias or version says otherwise. Default: the server's default model "
            "(TRAINSERVE_DEFAULT_MODEL), when no job_id is given."
        ),
    ] = None,
    alias: Annotated[
        Name | None, Query(description="The model's version that this alias names.")
    ] = None,
    version: Annotated[
        int | None, Query(ge=1, le=VERSION_MAX, description="This version of the model.")
    ] = None,
) -> Target:
    # async: nothing here blocks, and a plain def would cost every prediction a thread hop.
    return Target(job_id, model, alias, version)


TargetDep = Annotated[Target, Depends(_target)]
TopKQuery = Annotated[
    int | None,
    Query(ge=1, le=TOP_K_MAX, description="How many classes to list in `top_k` (default: all)."),
]
