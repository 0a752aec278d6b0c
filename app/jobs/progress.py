"""What a running job's worker records under its lease: heartbeats with progress, the start,
loss points and epochs, and the history a resumed job goes back to.

Every write is guarded by the lease (see app/jobs/transitions.py) and appends its event to the
job's event log in the same transaction.
"""

from datetime import timedelta

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from app.db import utcnow
from app.jobs.events import EventKind, append_event
from app.jobs.records import EpochRecord, LossRecord
from app.jobs.transitions import Lease, update_leased
from app.models import EpochResult, Job, LossPoint


def heartbeat(
    session: Session,
    lease: Lease,
    lease_seconds: float,
    epoch: int,
    step: int,
    images_per_s: float | None = None,
) -> bool:
    """Renew the lease and store progress (and the training rate, when measured); True when a
    cancel has been requested."""
    now = utcnow()
    rate = {} if images_per_s is None else {"images_per_s": images_per_s}
    update_leased(
        session,
        lease,
        lease_expires_at=now + timedelta(seconds=lease_seconds),
        heartbeat_at=now,
        progress_epoch=epoch,
        progress_step=step,
        **rate,
    )
    cancel_requested, steps_per_epoch = session.execute(
        select(Job.cancel_requested, Job.steps_per_epoch).where(Job.id == lease.job_id)
    ).one()
    if epoch >= 1:
        append_event(
            session,
            lease.job_id,
            EventKind.PROGRESS,
            {
                "epoch": epoch,
                "step": step,
                "steps_per_epoch": steps_per_epoch,
                "images_per_s": images_per_s,
            },
        )
    return bool(cancel_requested)


def record_start(
    session: Session, lease: Lease, *, device: str, classes: list[str], steps_per_epoch: int
) -> None:
    """Store where the job runs and what its dataset looks like."""
    update_leased(
        session,
        lease,
        device=device,
        classes=classes,
        steps_per_epoch=steps_per_epoch,
    )
    append_event(
        session,
        lease.job_id,
        EventKind.STARTED,
        {"device": device, "classes": classes, "steps_per_epoch": steps_per_epoch},
    )


def restore_history(
    session: Session,
    lease: Lease,
    *,
    epoch: int,
    step: int,
    loss_points: list[LossRecord],
    epochs: list[EpochRecord],
) -> None:
    """Make the stored history exactly what a checkpoint holds (empty when starting over)."""
    update_leased(session, lease, progress_epoch=epoch, progress_step=step)
    dropped = sum(
        session.execute(delete(table).where(table.job_id == lease.job_id)).rowcount  # type: ignore[attr-defined]
        for table in (LossPoint, EpochResult)
    )
    if dropped or loss_points or epochs:
        # Clients drop what they were sent after this point; the worker records it again.
        append_event(session, lease.job_id, EventKind.REWOUND, {"epoch": epoch, "step": step})
    if loss_points:
        session.execute(
            insert(LossPoint),
            [
                {"job_id": lease.job_id, "epoch": p.epoch, "step": p.step, "loss": p.loss}
                for p in loss_points
            ],
        )
    if epochs:
        session.execute(
            insert(EpochResult),
            [{"job_id": lease.job_id, **e.model_dump()} for e in epochs],
        )


def record_loss_point(session: Session, lease: Lease, point: LossRecord) -> None:
    """Append one loss point (and the progress it marks)."""
    update_leased(session, lease, progress_epoch=point.epoch, progress_step=point.step)
    session.execute(
        insert(LossPoint).values(
            job_id=lease.job_id, epoch=point.epoch, step=point.step, loss=point.loss
        )
    )
    append_event(
        session,
        lease.job_id,
        EventKind.LOSS,
        {"epoch": point.epoch, "step": point.step, "loss": point.loss},
    )


def record_epoch(session: Session, lease: Lease, result: EpochRecord, steps: int) -> None:
    """Append the results of a finished epoch."""
    update_leased(session, lease, progress_epoch=result.epoch, progress_step=steps)
    session.execute(insert(EpochResult).values(job_id=lease.job_id, **result.model_dump()))
    append_event(session, lease.job_id, EventKind.EPOCH, result.model_dump())


def record_checkpoint(session: Session, lease: Lease, *, key: str, sha256: str) -> None:
    """The job's newest checkpoint is the one published under `key`: a resumed attempt loads it,
    or the one it replaces, kept as the previous, when it does not load."""
    update_leased(
        session,
        lease,
        previous_checkpoint_key=Job.checkpoint_key,  # the values before this UPDATE
        previous_checkpoint_sha256=Job.checkpoint_sha256,
        checkpoint_key=key,
        checkpoint_sha256=sha256,
    )


def fall_back_to_previous_checkpoint(session: Session, lease: Lease) -> None:
    """The job's newest checkpoint does not load and the one before it did: that one becomes the
    newest, and the only one, so that the next checkpoint keeps it as the fallback rather than
    the one that does not load."""
    update_leased(
        session,
        lease,
        checkpoint_key=Job.previous_checkpoint_key,
        checkpoint_sha256=Job.previous_checkpoint_sha256,
        previous_checkpoint_key=None,
        previous_checkpoint_sha256=None,
    )


RecordedCheckpoint = tuple[str, str | None]  # its key and sha256


def recorded_checkpoints(session: Session, job_id: int) -> list[RecordedCheckpoint]:
    """The job's recorded checkpoints, the newest first: none, one or two."""
    row = session.execute(
        select(
            Job.checkpoint_key,
            Job.checkpoint_sha256,
            Job.previous_checkpoint_key,
            Job.previous_checkpoint_sha256,
        ).where(Job.id == job_id)
    ).one()
    pairs = [(row[0], row[1]), (row[2], row[3])]
    return [(key, sha256) for key, sha256 in pairs if key is not None]
