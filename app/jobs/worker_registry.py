"""The worker registry: each worker records what it offers and keeps a heartbeat there.

A worker counts as live while its heartbeat is younger than a lease (TRAINSERVE_LEASE_SECONDS):
the same rule by which its running job would be taken from it.
"""

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.orm import Session

from app.db import utcnow
from app.models import WorkerRecord

# A worker that stopped without a goodbye (killed, machine lost) is forgotten after this long.
FORGET_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory_mb: int


@dataclass(frozen=True)
class WorkerOffer:
    """What one worker process can run on."""

    hostname: str
    pid: int
    cpus: int
    torch_version: str
    gpus: tuple[Gpu, ...] = field(default=())


def register_worker(
    session: Session, worker_id: str, offer: WorkerOffer, images_trained: int = 0
) -> None:
    """Record (or record again, with the images it has trained so far) a worker as live,
    forgetting long-dead ones."""
    now = utcnow()
    session.execute(delete(WorkerRecord).where(WorkerRecord.heartbeat_at < now - FORGET_AFTER))
    session.execute(delete(WorkerRecord).where(WorkerRecord.id == worker_id))
    session.add(
        WorkerRecord(
            id=worker_id,
            hostname=offer.hostname,
            pid=offer.pid,
            started_at=now,
            heartbeat_at=now,
            cpus=offer.cpus,
            gpu_count=len(offer.gpus),
            gpus=[asdict(gpu) for gpu in offer.gpus],
            torch_version=offer.torch_version,
            current_job_id=None,
            images_trained=images_trained,
        )
    )


def worker_heartbeat(
    session: Session, worker_id: str, current_job_id: int | None, images_trained: int
) -> bool:
    """Renew a worker's heartbeat and say what it runs and how many images it has trained in
    all; False if its record is gone."""
    renewed = session.execute(
        update(WorkerRecord)
        .where(WorkerRecord.id == worker_id)
        .values(heartbeat_at=utcnow(), current_job_id=current_job_id, images_trained=images_trained)
    ).rowcount  # type: ignore[attr-defined]
    return bool(renewed)


def unregister_worker(session: Session, worker_id: str) -> None:
    session.execute(delete(WorkerRecord).where(WorkerRecord.id == worker_id))


def _live_since(lease_seconds: float, now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(seconds=lease_seconds)


def is_live(lease_seconds: float) -> ColumnElement[bool]:
    """The condition a live worker's record meets."""
    return WorkerRecord.heartbeat_at >= _live_since(lease_seconds)


def live_workers(session: Session, lease_seconds: float) -> list[WorkerRecord]:
    """Workers whose heartbeat is younger than a lease, oldest first."""
    return list(
        session.scalars(
            select(WorkerRecord)
            .where(is_live(lease_seconds))
            .order_by(WorkerRecord.started_at, WorkerRecord.id)
        )
    )


def most_gpus_live(session: Session, lease_seconds: float) -> int | None:
    """The most GPUs any live worker offers; None when no worker is live."""
    count, most = session.execute(
        select(func.count(), func.max(WorkerRecord.gpu_count)).where(is_live(lease_seconds))
    ).one()
    return None if count == 0 else int(most)
