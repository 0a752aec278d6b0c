"""A dataset's attempts: each claim recorded, a dying decoding queued again until the attempts run
out, a lost worker's attempt ended by the next claimer, a stopping worker's not counted, and
nothing written under a lease that has gone. Real rows in the migrated database."""

import pytest

from app.datasets.state import (
    DatasetLease,
    IngestResult,
    claim_next_dataset,
    create_dataset,
    decoder_died,
    finish_dataset,
    recover_orphaned_datasets,
    release_dataset,
)
from app.db import session_scope
from app.jobs.worker_registry import WorkerOffer, register_worker
from app.models import Dataset, DatasetStatus
from app.storage.store import Published
from tests.conftest import Env

DATASET_ID = "ds-0123456789ab"
KILLED = "was killed by SIGKILL (peak memory 181 MiB)"
RESULT = IngestResult(classes=["a", "b"], counts={"train": {"a": 1, "b": 1}}, test_split="drawn")

pytestmark = pytest.mark.usefixtures("migrated_env")


def upload(max_attempts: int) -> None:
    with session_scope(write=True) as session:
        create_dataset(
            session,
            DATASET_ID,
            name="a.zip",
            kind="images",
            options={},
            upload=Published(f"datasets/{DATASET_ID}/upload", 1, "0" * 64),
            max_attempts=max_attempts,
        )


def claim(owner: str) -> DatasetLease:
    with session_scope(write=True) as session:
        claimed = claim_next_dataset(session, owner)
        assert claimed is not None
        return claimed[1]


def shown() -> Dataset:
    with session_scope() as session:
        dataset = session.get(Dataset, DATASET_ID)
        assert dataset is not None
        session.expunge(dataset)
        return dataset


def outcomes() -> list[tuple[int, str, str, str | None]]:
    return [
        (a["attempt"], a["worker_id"], a["outcome"], a["detail"]) for a in shown().attempt_history
    ]


def live(worker_id: str) -> None:
    with session_scope(write=True) as session:
        register_worker(session, worker_id, WorkerOffer("host", 1, cpus=1, torch_version="2"))


def test_a_decoder_that_dies_on_every_attempt_fails_the_dataset_at_max_attempts(
    migrated_env: Env,
) -> None:
    upload(max_attempts=2)
    first = claim("w1")
    assert (first.attempt, first.max_attempts) == (1, 2)
    assert outcomes() == [(1, "w1", "decoding", None)]
    with session_scope(write=True) as session:
        assert decoder_died(session, first, KILLED) == DatasetStatus.QUEUED
    assert (shown().status, shown().error) == ("queued", None)

    second = claim("w2")
    with session_scope(write=True) as session:
        assert finish_dataset(session, first, RESULT) is False  # the first lease has gone
        assert decoder_died(session, second, KILLED) == DatasetStatus.FAILED
    failed = shown()
    assert (failed.status, failed.attempts, failed.error) == (
        "failed",
        2,
        "decoding gave up after 2 attempts: the last time, the process decoding it was killed "
        "by SIGKILL (peak memory 181 MiB); the upload may crash the decoder or need more memory "
        "than a worker has",
    )
    detail = f"the process decoding it {KILLED}"
    assert outcomes() == [(1, "w1", "decoder died", detail), (2, "w2", "decoder died", detail)]
    with session_scope(write=True) as session:
        assert claim_next_dataset(session, "w3") is None  # no third attempt


def test_a_lost_workers_attempt_is_ended_by_the_next_claimer(migrated_env: Env) -> None:
    upload(max_attempts=2)
    live("w1")
    claim("w1")
    with session_scope(write=True) as session:
        assert recover_orphaned_datasets(session, lease_seconds=30) == (0, [])  # w1 is live
        assert recover_orphaned_datasets(session, lease_seconds=0) == (1, [])
    claim("w2")  # w2 never registered: not live
    with session_scope(write=True) as session:
        assert recover_orphaned_datasets(session, lease_seconds=30) == (0, [DATASET_ID])
    lost = "the worker decoding it stopped without a word (killed, or out of memory?)"
    assert outcomes() == [(1, "w1", "worker lost", lost), (2, "w2", "worker lost", lost)]
    assert shown().error == (
        f"decoding gave up after 2 attempts: the last time, {lost}; the upload may crash the "
        "decoder or need more memory than a worker has"
    )


def test_a_stopping_worker_hands_the_dataset_back_without_counting(migrated_env: Env) -> None:
    upload(max_attempts=1)
    lease = claim("w1")
    with session_scope(write=True) as session:
        assert release_dataset(session, lease) is True
        assert release_dataset(session, lease) is False  # not ours any more
    assert (shown().status, shown().attempts, shown().attempt_history) == ("queued", 0, [])
    again = claim("w2")
    with session_scope(write=True) as session:
        assert finish_dataset(session, again, RESULT) is True
    ready = shown()
    assert (ready.status, ready.attempts, ready.classes) == ("ready", 1, ["a", "b"])
    assert outcomes() == [(1, "w2", "ready", None)]


def test_an_upload_past_2_gib_is_recorded_with_its_size() -> None:
    size = 3 * 1024**3  # past a 32-bit integer: TRAINSERVE_MAX_DATASET_BYTES has no bound
    with session_scope(write=True) as session:
        create_dataset(
            session,
            DATASET_ID,
            name="big.zip",
            kind="images",
            options={},
            upload=Published(f"datasets/{DATASET_ID}/upload", size, "0" * 64),
        )
    assert shown().upload_bytes == size
