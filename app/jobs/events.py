"""A job's event log: what the API and its worker record, in order, for clients to follow.

Every event is appended in the same transaction as the change it reports, so a client never
sees an event for a change that was rolled back, nor a change without its event. Each job
numbers its events 1, 2, 3...: that number is the Server-Sent Events id a client resumes after.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from app.db import session_scope, utcnow
from app.models import Job, JobEvent, JobStatus

FINISHED = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
EVENTS_PER_READ = 500


class EventKind(StrEnum):
    # The job's status changed; `status` says to what, with the error or results that came with it.
    STATUS = "status"
    # Its worker began (or resumed) training: device, classes, steps per epoch.
    STARTED = "started"
    # Where training is now and how fast; only the newest one is kept, as it replaces the others.
    PROGRESS = "progress"
    # The mean training loss over one log_every window.
    LOSS = "loss"
    # One epoch's training loss and test results.
    EPOCH = "epoch"
    # A resumed job went back to its checkpoint: loss points and epochs after it are void.
    REWOUND = "rewound"
    # A cancel was asked for; the worker stops within seconds.
    CANCEL_REQUESTED = "cancel_requested"
    # The succeeded job's model became a version of a registered model (its register_as):
    # model, version, promoted, and the reason it was or was not promoted.
    REGISTERED = "registered"


@dataclass(frozen=True)
class Event:
    seq: int
    kind: EventKind
    data: dict[str, Any]


def append_event(session: Session, job_id: int, kind: EventKind, data: dict[str, Any]) -> None:
    """Record an event of the job.

    Call it after the change it reports has updated the job's row: on PostgreSQL that update
    holds the row's lock, so two transactions never take the same number, and numbers are
    committed in order (SQLite has one writer at a time anyway).
    """
    last = session.scalar(select(func.max(JobEvent.seq)).where(JobEvent.job_id == job_id))
    if kind == EventKind.PROGRESS:
        # Progress is a state, not a history: the newest replaces those before it, so a client
        # that joins late is not sent a progress event for every heartbeat of the job's life.
        session.execute(
            delete(JobEvent).where(JobEvent.job_id == job_id, JobEvent.kind == EventKind.PROGRESS)
        )
    session.execute(
        insert(JobEvent).values(
            job_id=job_id, seq=(last or 0) + 1, kind=kind, data=data, created_at=utcnow()
        )
    )


def status_event(session: Session, job_id: int, status: JobStatus, **details: Any) -> None:
    """Record that the job's status became `status`."""
    append_event(session, job_id, EventKind.STATUS, {"status": str(status), **details})


def events_after(session: Session, job_id: int, after: int, limit: int) -> list[Event]:
    """The job's events numbered above `after`, oldest first, at most `limit` of them."""
    rows = session.execute(
        select(JobEvent.seq, JobEvent.kind, JobEvent.data)
        .where(JobEvent.job_id == job_id, JobEvent.seq > after)
        .order_by(JobEvent.seq)
        .limit(limit)
    )
    return [Event(seq, EventKind(kind), data) for seq, kind, data in rows]


def read_new_events(job_id: int, after: int) -> tuple[list[Event], bool]:
    """The job's next events after `after` (at most EVENTS_PER_READ), and whether they are its
    last: the job had finished before they were read, or is gone."""
    # Its own short session: one held by a follower would keep a read transaction open.
    with session_scope() as session:
        status = session.scalar(select(Job.status).where(Job.id == job_id))
        events = events_after(session, job_id, after, EVENTS_PER_READ)
    finished = status is None or JobStatus(status) in FINISHED
    return events, finished and len(events) < EVENTS_PER_READ
