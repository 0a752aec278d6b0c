"""The event log: every change to a job appends its event, numbered in order, in the same
transaction; progress keeps only its newest event."""

from datetime import timedelta

from sqlalchemy import insert

from alembic import command
from app.db import session_scope, utcnow
from app.jobs.config import JobConfig
from app.jobs.events import Event, EventKind, events_after
from app.jobs.progress import (
    heartbeat,
    record_epoch,
    record_loss_point,
    record_start,
    restore_history,
)
from app.jobs.records import EpochRecord, LossRecord
from app.jobs.transitions import (
    FinalResults,
    Lease,
    claim_next_job,
    create_job,
    fail_job,
    finish_job,
    recover_expired_leases,
    release_job,
    request_cancel,
)
from app.migrations import alembic_config, upgrade_to_head
from app.models import EpochResult, Job, LossPoint
from tests.conftest import Env

CLASSES = ["a", "b"]


def events(job_id: int, after: int = 0) -> list[Event]:
    with session_scope() as session:
        return events_after(session, job_id, after, 1000)


def kinds(job_id: int) -> list[tuple[int, str, str | None]]:
    return [(e.seq, e.kind, e.data.get("status")) for e in events(job_id)]


def claimed_job() -> tuple[int, Lease]:
    with session_scope(write=True) as session:
        job_id = create_job(session, JobConfig(epochs=1, seed=0)).id
    with session_scope(write=True) as session:
        lease = claim_next_job(session, "w1", 30)
    assert lease is not None and lease.job_id == job_id
    return job_id, lease


def test_a_job_s_life_is_told_in_order_with_newest_progress_only(migrated_env: Env) -> None:
    job_id, lease = claimed_job()
    with session_scope(write=True) as session:
        record_start(session, lease, device="cpu", classes=CLASSES, steps_per_epoch=10)
    with session_scope(write=True) as session:
        heartbeat(session, lease, 30, 1, 3, images_per_s=120.0)
    with session_scope(write=True) as session:
        record_loss_point(session, lease, LossRecord(epoch=1, step=5, loss=0.75))
    with session_scope(write=True) as session:
        heartbeat(session, lease, 30, 1, 8, images_per_s=130.0)
    with session_scope(write=True) as session:
        record = EpochRecord(
            epoch=1, train_loss=0.7, test_loss=0.6, test_accuracy=0.5, elapsed_s=2.5
        )
        record_epoch(session, lease, record, 10)
    with session_scope(write=True) as session:
        results = FinalResults(
            0.5, {"a": 1.0, "b": 0.0}, [[1, 0], [1, 0]], "m.pt", "0" * 64, "1" * 64, 2
        )
        finish_job(session, lease, results)

    assert kinds(job_id) == [
        (1, "status", "queued"),
        (2, "status", "running"),
        (3, "started", None),
        # seq 4 was the first progress event, replaced by seq 6
        (5, "loss", None),
        (6, "progress", None),
        (7, "epoch", None),
        (8, "status", "succeeded"),
    ]
    by_seq = {e.seq: e.data for e in events(job_id)}
    assert by_seq[2] == {"status": "running", "attempt": 1, "worker_id": "w1"}
    assert by_seq[3] == {"device": "cpu", "classes": CLASSES, "steps_per_epoch": 10}
    assert by_seq[5] == {"epoch": 1, "step": 5, "loss": 0.75}
    assert by_seq[6] == {"epoch": 1, "step": 8, "steps_per_epoch": 10, "images_per_s": 130.0}
    assert by_seq[7] == {
        "epoch": 1,
        "train_loss": 0.7,
        "test_loss": 0.6,
        "test_accuracy": 0.5,
        "elapsed_s": 2.5,
        "validation_loss": None,
        "validation_accuracy": None,
    }
    assert by_seq[8] == {
        "status": "succeeded",
        "test_accuracy": 0.5,
        "per_class_accuracy": {"a": 1.0, "b": 0.0},
        "confusion_matrix": [[1, 0], [1, 0]],
        "best_epoch": None,
    }
    assert [e.seq for e in events(job_id, after=5)] == [6, 7, 8]


def test_requeues_failures_cancels_and_rewinds_are_events(migrated_env: Env) -> None:
    with session_scope(write=True) as session:
        lost = create_job(session, JobConfig(epochs=1, seed=0), max_attempts=1).id
        requeued = create_job(session, JobConfig(epochs=1, seed=0), max_attempts=2).id
        queued = create_job(session, JobConfig(epochs=1, seed=0)).id
    with session_scope(write=True) as session:
        assert claim_next_job(session, "w1", 1) is not None
        assert claim_next_job(session, "w1", 1) is not None
    with session_scope(write=True) as session:
        assert recover_expired_leases(session, utcnow() + timedelta(seconds=60)) == (1, 1)
    assert events(lost)[-1].data["status"] == "failed"
    assert "lost" in events(lost)[-1].data["error"]
    assert events(requeued)[-1].data["status"] == "queued"
    assert "resumes from its last checkpoint" in events(requeued)[-1].data["reason"]

    with session_scope(write=True) as session:
        assert request_cancel(session, queued) == "cancelled"
    assert kinds(queued) == [(1, "status", "queued"), (2, "status", "cancelled")]

    with session_scope(write=True) as session:
        lease = claim_next_job(session, "w2", 30)
        assert lease is not None and lease.job_id == requeued
    with session_scope(write=True) as session:
        restore_history(
            session,
            lease,
            epoch=1,
            step=4,
            loss_points=[
                LossRecord(epoch=1, step=2, loss=0.9),
                LossRecord(epoch=1, step=4, loss=0.8),
            ],
            epochs=[],
        )
    assert events(requeued)[-1].kind == EventKind.REWOUND
    assert events(requeued)[-1].data == {"epoch": 1, "step": 4}
    with session_scope(write=True) as session:
        assert request_cancel(session, requeued) == "running"
    with session_scope(write=True) as session:
        assert request_cancel(session, requeued) == "running"  # asked twice, told once
    assert [e.kind for e in events(requeued)].count(EventKind.CANCEL_REQUESTED) == 1
    with session_scope(write=True) as session:
        release_job(session, lease)
    with session_scope(write=True) as session:
        lease = claim_next_job(session, "w3", 30)
        assert lease is not None
    with session_scope(write=True) as session:
        fail_job(session, lease, "out of memory")
    assert events(requeued)[-1].data == {"status": "failed", "error": "out of memory"}
    seqs = [e.seq for e in events(requeued)]
    assert seqs == list(range(1, len(seqs) + 1))


def test_a_fresh_start_does_not_rewind(migrated_env: Env) -> None:
    job_id, lease = claimed_job()
    with session_scope(write=True) as session:
        restore_history(session, lease, epoch=0, step=0, loss_points=[], epochs=[])
    assert [e.kind for e in events(job_id)] == ["status", "status"]


def test_the_migration_gives_existing_jobs_their_history(env: Env) -> None:
    config = alembic_config()
    command.upgrade(config, "20261122_0005")
    now = utcnow()
    with session_scope(write=True) as session:
        common = {"config": {"epochs": 1}, "created_at": now, "progress_epoch": 1}
        session.execute(
            insert(Job),
            [
                {**common, "id": 1, "status": "succeeded", "test_accuracy": 0.5,
                 "per_class_accuracy": {"a": 0.5}, "confusion_matrix": [[1]]},
                {**common, "id": 2, "status": "running", "progress_step": 3},
                {**common, "id": 3, "status": "failed", "error": "boom"},
            ],
        )  # fmt: skip
        session.execute(
            insert(LossPoint),
            [
                {"job_id": 1, "epoch": 1, "step": 2, "loss": 2.0},
                {"job_id": 1, "epoch": 1, "step": 4, "loss": 1.5},
                {"job_id": 2, "epoch": 1, "step": 2, "loss": 2.2},
            ],
        )
        session.execute(
            insert(EpochResult),
            [{"job_id": 1, "epoch": 1, "train_loss": 1.7, "test_loss": 1.6,
              "test_accuracy": 0.5, "elapsed_s": None}],
        )  # fmt: skip
    upgrade_to_head()
    assert [(e.kind, e.data) for e in events(1)] == [
        ("loss", {"epoch": 1, "step": 2, "loss": 2.0}),
        ("loss", {"epoch": 1, "step": 4, "loss": 1.5}),
        (
            "epoch",
            {"epoch": 1, "train_loss": 1.7, "test_loss": 1.6, "test_accuracy": 0.5,
             "elapsed_s": None},
        ),
        (
            "status",
            {"status": "succeeded", "test_accuracy": 0.5, "per_class_accuracy": {"a": 0.5},
             "confusion_matrix": [[1]]},
        ),
    ]  # fmt: skip
    assert [(e.seq, e.kind) for e in events(2)] == [(1, "status"), (2, "loss")]
    assert [e.data for e in events(3)] == [{"status": "failed", "error": "boom"}]
