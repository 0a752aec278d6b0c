"""What queued and running jobs still need: a dataset, or the weights they start from, must not
be deleted under them."""

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from app.errors import Conflict
from app.models import Job, JobStatus


def refuse_while_needed(session: Session, what: str, *conditions: ColumnElement[bool]) -> None:
    """409 naming the queued or running jobs whose config meets `conditions`, if any: they
    need `what` ("dataset ds-...")."""
    users = session.scalars(
        select(Job.id)
        .where(Job.status.in_([JobStatus.QUEUED, JobStatus.RUNNING]), *conditions)
        .order_by(Job.id)
    ).all()
    if users:
        raise Conflict(
            f"{what} is used by unfinished job(s) {', '.join(map(str, users))}; cancel them or "
            "wait for them to end"
        )
