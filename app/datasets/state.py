"""The only code that changes an uploaded dataset's status; each change is a guarded UPDATE.

A worker claims a queued dataset, decodes it and marks it ready or failed. A dataset whose
worker stopped being live (see app/jobs/worker_registry.py) goes back to the queue for another.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.db import utcnow
from app.jobs.worker_registry import is_live
from app.models import Dataset, DatasetStatus, WorkerRecord


@dataclass(frozen=True)
class IngestResult:
    classes: list[str]
    counts: dict[str, dict[str, int]]
    test_split: str
    image_size: int | None = None
    ignored_files: int | None = None
    feature_columns: list[str] | None = None


def create_dataset(
    session: Session,
    dataset_id: str,
    *,
    name: str,
    kind: str,
    options: dict[str, Any],
    upload_bytes: int,
) -> Dataset:
    """Queue an uploaded, checked dataset for a worker to decode."""
    dataset = Dataset(
        id=dataset_id,
        name=name,
        kind=kind,
        status=DatasetStatus.QUEUED,
        options=options,
        upload_bytes=upload_bytes,
        created_at=utcnow(),
    )
    session.add(dataset)
    session.flush()
    return dataset


def claim_next_dataset(session: Session, owner: str) -> Dataset | None:
    """Atomically move the oldest queued dataset to ingesting for `owner`; None if none."""
    oldest = (
        select(Dataset.id)
        .where(Dataset.status == DatasetStatus.QUEUED)
        .order_by(Dataset.created_at, Dataset.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).scalar_subquery()
    claimed = session.execute(
        update(Dataset)
        .where(Dataset.id == oldest, Dataset.status == DatasetStatus.QUEUED)
        .values(status=DatasetStatus.INGESTING, worker_id=owner)
        .returning(Dataset.id)
    ).scalar_one_or_none()
    return None if claimed is None else session.get(Dataset, claimed)


def requeue_orphaned_datasets(session: Session, lease_seconds: float) -> int:
    """Put back in the queue the datasets being ingested by workers that are no longer live."""
    live = select(WorkerRecord.id).where(is_live(lease_seconds))
    result = session.execute(
        update(Dataset)
        .where(Dataset.status == DatasetStatus.INGESTING, Dataset.worker_id.not_in(live))
        .values(status=DatasetStatus.QUEUED, worker_id=None)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _update_ingesting(session: Session, dataset_id: str, owner: str, **values: Any) -> bool:
    result = session.execute(
        update(Dataset)
        .where(
            Dataset.id == dataset_id,
            Dataset.status == DatasetStatus.INGESTING,
            Dataset.worker_id == owner,
        )
        .values(finished_at=utcnow(), **values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def finish_dataset(session: Session, dataset_id: str, owner: str, result: IngestResult) -> bool:
    """Mark the dataset ready; False when it was deleted or taken over meanwhile."""
    return _update_ingesting(
        session,
        dataset_id,
        owner,
        status=DatasetStatus.READY,
        classes=result.classes,
        counts=result.counts,
        image_size=result.image_size,
        test_split=result.test_split,
        ignored_files=result.ignored_files,
        feature_columns=result.feature_columns,
    )


def fail_dataset(session: Session, dataset_id: str, owner: str, message: str) -> bool:
    """Mark the dataset failed with a message for the user."""
    return _update_ingesting(session, dataset_id, owner, status=DatasetStatus.FAILED, error=message)
