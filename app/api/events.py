"""A job's events as a live Server-Sent Events stream."""

import time
from collections.abc import AsyncGenerator
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Header
from sqlalchemy import select

from app.api.deps import EventHubDep, JobIdPath, SettingsDep
from app.db import session_scope
from app.errors import NotFound
from app.jobs.event_hub import EventHub
from app.jobs.fields import COUNT_MAX
from app.models import Job
from app.sse import (
    KEEPALIVE,
    KEEPALIVE_SECONDS,
    SSE_EVENT_SCHEMA,
    EventStreamResponse,
    sse_message,
)

router = APIRouter(prefix="/jobs", tags=["jobs"])

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


@router.get(
    "/{job_id}/events",
    response_class=EventStreamResponse,
    status_code=200,  # said, as EventStreamResponse takes none to read it from
    responses={
        200: {"content": {"text/event-stream": {"itemSchema": SSE_EVENT_SCHEMA}}},
        404: {"description": "No job with this id.", "content": ERROR_JSON},
        422: {"description": "Last-Event-ID is not a whole number.", "content": ERROR_JSON},
    },
    summary="Follow a job live (Server-Sent Events)",
    description=EVENTS_DESCRIPTION,
)
async def follow_job(
    job_id: Annotated[int, Depends(_existing_job)],
    settings: SettingsDep,
    hub: EventHubDep,
    last_event_id: Annotated[
        int,
        Header(ge=0, le=COUNT_MAX, description="Resume after this event id (0: from the start)."),
    ] = 0,
) -> EventStreamResponse:
    return EventStreamResponse(
        _stream(hub, job_id, last_event_id, time.monotonic() + settings.events_max_seconds)
    )


async def _stream(
    hub: EventHub, job_id: int, after: int, closes_at: float
) -> AsyncGenerator[bytes, None]:
    subscription = hub.follow(job_id, after)
    try:
        yield sse_message(retry=RETRY_MS, comment=f"job {job_id}, events after {after}")
        while not subscription.ended:
            open_s = closes_at - time.monotonic()
            if open_s <= 0:
                return
            keepalive_due = open_s > KEEPALIVE_SECONDS
            with anyio.move_on_after(min(KEEPALIVE_SECONDS, open_s)) as waited:
                events = await subscription.next_events()
            if waited.cancelled_caught:
                if keepalive_due:
                    yield KEEPALIVE
                continue
            if not events:
                continue  # the job ended with nothing more to send
            # One write for the batch: with a thousand streams, every write counts.
            yield b"".join(
                sse_message(event=event.kind, id=str(event.seq), data=event.data)
                for event in events
            )
    finally:
        subscription.close()
