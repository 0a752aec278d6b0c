"""A job's events as a live Server-Sent Events stream."""

import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, Header
from fastapi.sse import EventSourceResponse, ServerSentEvent
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from app.api.deps import JobIdPath, SettingsDep
from app.db import session_scope
from app.errors import NotFound
from app.jobs.events import FINISHED, Event, events_after
from app.jobs.fields import COUNT_MAX
from app.models import Job, JobStatus

router = APIRouter(prefix="/jobs", tags=["jobs"])

EVENTS_PER_READ = 500
# Spelled out: a `model` here would be documented as text/event-stream, the route's own type.
ERROR_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
RETRY_MS = 2000

EVENTS_DESCRIPTION = """Everything recorded for the job, oldest first, then new events as they
happen; the stream ends after the job's final `status` event. Each event's `data` is JSON:

- `status`: `{"status": ...}` with `attempt` and `worker_id` when running, `error` when failed,
  `reason` when requeued, `test_accuracy`, `per_class_accuracy`, `confusion_matrix` and
  `best_epoch` when succeeded;
- `started`: `device`, `classes`, `steps_per_epoch` (again after each resume);
- `progress`: `epoch`, `step`, `steps_per_epoch`, `images_per_s` (every heartbeat; only the
  newest is replayed);
- `loss`: `epoch`, `step`, `loss` (every `log_every` mini-batches);
- `epoch`: `epoch`, `train_loss`, `test_loss`, `test_accuracy`, `elapsed_s`,
  `validation_loss`, `validation_accuracy`;
- `rewound`: `epoch`, `step`: the job resumed from its checkpoint there; drop loss points and
  epochs after it, they are sent again;
- `cancel_requested`: `{}`.

Event ids count 1, 2, 3... per job. Send the last one you saw as `Last-Event-ID` to resume
without repeats. A stream that stays open for `TRAINSERVE_EVENTS_MAX_SECONDS` is closed by the
server, to be resumed the same way.
"""


def _existing_job(job_id: JobIdPath) -> int:
    # Its own short session: one held for the whole stream would keep a read transaction open.
    with session_scope() as session:
        if session.scalar(select(Job.id).where(Job.id == job_id)) is None:
            raise NotFound(f"job {job_id} not found")
    return job_id


def _read(job_id: int, after: int) -> tuple[list[Event], bool]:
    """New events, and whether the job had finished before they were read (then there are no
    more to come once these are sent)."""
    with session_scope() as session:
        status = session.scalar(select(Job.status).where(Job.id == job_id))
        events = events_after(session, job_id, after, EVENTS_PER_READ)
    finished = status is None or JobStatus(status) in FINISHED
    return events, finished and len(events) < EVENTS_PER_READ


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={
        404: {"description": "No job with this id.", "content": ERROR_JSON},
        422: {"description": "Last-Event-ID is not a whole number.", "content": ERROR_JSON},
    },
    summary="Follow a job live (Server-Sent Events)",
    description=EVENTS_DESCRIPTION,
)
async def follow_job(
    job_id: Annotated[int, Depends(_existing_job)],
    settings: SettingsDep,
    last_event_id: Annotated[
        int,
        Header(ge=0, le=COUNT_MAX, description="Resume after this event id (0: from the start)."),
    ] = 0,
) -> AsyncIterator[ServerSentEvent]:
    after = last_event_id
    closes_at = time.monotonic() + settings.events_max_seconds
    yield ServerSentEvent(retry=RETRY_MS, comment=f"job {job_id}, events after {after}")
    while True:
        events, ended = await run_in_threadpool(_read, job_id, after)
        for event in events:
            yield _sse(event)
            after = event.seq
        if ended or time.monotonic() >= closes_at:
            return
        if not events:
            await anyio.sleep(settings.events_poll_seconds)


def _sse(event: Event) -> ServerSentEvent:
    data: dict[str, Any] = event.data
    return ServerSentEvent(event=event.kind, id=str(event.seq), data=data)
