"""The only code that changes an uploaded dataset's status; each change is a guarded UPDATE.

A worker claims a queued dataset (one more attempt, recorded in its history), decodes it and
marks it ready or failed. An attempt whose decoding process died, or whose worker stopped being
live (see app/jobs/worker_registry.py), sends the dataset back to the queue for another, until
its attempts run out: it then fails, so that a poisonous upload cannot take down workers forever.
Every write a worker makes is guarded by the worker and the attempt it claimed.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.datasets.attempts import AttemptOutcome, ended, gave_up_message, started
from app.db import utcnow
from app.jobs.worker_registry import is_live
from app.models import Dataset, DatasetStatus, WorkerRecord
from app.storage.store import Published

WORKER_LOST = "the worker decoding it stopped without a word (killed, or out of memory?)"
# A dataset that is ready or failed refers to its upload no more: its worker removes it, or the
# sweep does.
UPLOAD_DONE_WITH: dict[str, Any] = {"upload_key": None}


@dataclass(frozen=True)
class IngestResult:
    classes: list[str]
    counts: dict[str, dict[str, int]]
    test_split: str
    image_size: int | None = None
    ignored_files: int | None = None
    feature_columns: list[str] | None = None
    # Where the decoded tensors were published in the artifact store.
    tensors_key: str | None = None
    tensors_sha256: str | None = None


@dataclass(frozen=True)
class DatasetLease:
    """One attempt at decoding a dataset, by one worker."""

    dataset_id: str
    owner: str
    attempt: int
    max_attempts: int


def create_dataset(
    session: Session,
    dataset_id: str,
    *,
    name: str,
    kind: str,
    options: dict[str, Any],
    upload: Published,
    max_attempts: int = 3,
) -> Dataset:
    """Queue an uploaded, checked dataset, stored as `upload`, for a worker to decode."""
    dataset = Dataset(
        id=dataset_id,
        name=name,
        kind=kind,
        status=DatasetStatus.QUEUED,
        options=options,
        upload_bytes=upload.size,
        upload_key=upload.key,
        upload_sha256=upload.sha256,
        created_at=utcnow(),
        attempts=0,
        max_attempts=max_attempts,
        attempt_history=[],
    )
    session.add(dataset)
    session.flush()
    return dataset


def claim_next_dataset(session: Session, owner: str) -> tuple[Dataset, DatasetLease] | None:
    """Atomically move the oldest queued dataset to ingesting for `owner`, as its next attempt;
    None if none."""
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
        .values(status=DatasetStatus.INGESTING, worker_id=owner, attempts=Dataset.attempts + 1)
        .returning(Dataset.id)
    ).scalar_one_or_none()
    if claimed is None:
        return None
    # The claim's UPDATE holds the row until commit: no one else writes its history meanwhile.
    dataset = session.get_one(Dataset, claimed, populate_existing=True)
    lease = DatasetLease(dataset.id, owner, dataset.attempts, dataset.max_attempts)
    _update_leased(
        session, lease, attempt_history=started(dataset.attempt_history, lease.attempt, owner)
    )
    session.refresh(dataset)
    return dataset, lease


def recover_orphaned_datasets(session: Session, lease_seconds: float) -> tuple[int, list[str]]:
    """End the attempts of workers that are no longer live: their datasets go back to the queue,
    or fail when out of attempts. How many were queued again, and the ids of those that failed."""
    live = select(WorkerRecord.id).where(is_live(lease_seconds))
    orphaned = session.scalars(
        select(Dataset)
        .where(Dataset.status == DatasetStatus.INGESTING, Dataset.worker_id.not_in(live))
        .with_for_update(skip_locked=True)
    ).all()
    requeued, failed = 0, []
    for dataset in orphaned:
        assert dataset.worker_id is not None
        lease = DatasetLease(dataset.id, dataset.worker_id, dataset.attempts, dataset.max_attempts)
        status = _attempt_died(session, lease, dataset.attempt_history, "worker lost", WORKER_LOST)
        if status == DatasetStatus.QUEUED:
            requeued += 1
        elif status == DatasetStatus.FAILED:
            failed.append(dataset.id)
    return requeued, failed


def decoder_died(session: Session, lease: DatasetLease, how: str) -> DatasetStatus | None:
    """The attempt's decoding process died (`how`: was killed by SIGKILL, with its peak
    memory...): queue the dataset again, or fail it when out of attempts. Its status now, or None
    when it was deleted or taken over meanwhile."""
    history = session.scalar(select(Dataset.attempt_history).where(Dataset.id == lease.dataset_id))
    if history is None:
        return None
    return _attempt_died(session, lease, history, "decoder died", f"the process decoding it {how}")


def _attempt_died(
    session: Session,
    lease: DatasetLease,
    history: list[dict[str, Any]],
    outcome: AttemptOutcome,
    what: str,
) -> DatasetStatus | None:
    now = utcnow()
    history = ended(history, lease.attempt, outcome, what, now)
    values: dict[str, Any]
    if lease.attempt < lease.max_attempts:
        status, values = DatasetStatus.QUEUED, {"worker_id": None}
    else:
        status = DatasetStatus.FAILED
        values = {"finished_at": now, "error": gave_up_message(lease.attempt, what)}
        values.update(UPLOAD_DONE_WITH)
    written = _update_leased(session, lease, status=status, attempt_history=history, **values)
    return status if written else None


def release_dataset(session: Session, lease: DatasetLease) -> bool:
    """Hand the dataset back to the queue without counting the attempt (graceful worker stop);
    False when it was deleted or taken over meanwhile."""
    history = session.scalar(select(Dataset.attempt_history).where(Dataset.id == lease.dataset_id))
    if history is None:
        return False
    return _update_leased(
        session,
        lease,
        status=DatasetStatus.QUEUED,
        worker_id=None,
        attempts=Dataset.attempts - 1,
        attempt_history=[record for record in history if record["attempt"] != lease.attempt],
    )


def _update_leased(session: Session, lease: DatasetLease, **values: Any) -> bool:
    """Write `values` only while `lease` holds the dataset; False when it was deleted or taken
    over meanwhile."""
    result = session.execute(
        update(Dataset)
        .where(
            Dataset.id == lease.dataset_id,
            Dataset.status == DatasetStatus.INGESTING,
            Dataset.worker_id == lease.owner,
            Dataset.attempts == lease.attempt,
        )
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _end(
    session: Session,
    lease: DatasetLease,
    outcome: AttemptOutcome,
    detail: str | None,
    **values: Any,
) -> bool:
    history = session.scalar(select(Dataset.attempt_history).where(Dataset.id == lease.dataset_id))
    if history is None:
        return False
    now = utcnow()
    return _update_leased(
        session,
        lease,
        finished_at=now,
        attempt_history=ended(history, lease.attempt, outcome, detail, now),
        **values,
    )


def finish_dataset(session: Session, lease: DatasetLease, result: IngestResult) -> bool:
    """Mark the dataset ready, recording where its tensors are; False when it was deleted or
    taken over meanwhile."""
    return _end(
        session,
        lease,
        "ready",
        None,
        **UPLOAD_DONE_WITH,
        status=DatasetStatus.READY,
        tensors_key=result.tensors_key,
        tensors_sha256=result.tensors_sha256,
        classes=result.classes,
        counts=result.counts,
        image_size=result.image_size,
        test_split=result.test_split,
        ignored_files=result.ignored_files,
        feature_columns=result.feature_columns,
    )


def fail_dataset(session: Session, lease: DatasetLease, message: str) -> bool:
    """Mark the dataset failed with a message for the user (its upload is at fault: no retry)."""
    return _end(
        session,
        lease,
        "failed",
        message,
        **UPLOAD_DONE_WITH,
        status=DatasetStatus.FAILED,
        error=message,
    )
