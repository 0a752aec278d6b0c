"""Leases: expiry, requeue, the attempt limit, and writes refused to a worker that lost its job."""

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.db import session_scope, utcnow
from app.jobs.config import JobConfig
from app.jobs.progress import heartbeat, record_loss_point
from app.jobs.records import LossRecord
from app.jobs.transitions import (
    Lease,
    LostJob,
    claim_next_job,
    create_job,
    recover_expired_leases,
    release_job,
)
from app.models import Job, JobStatus, LossPoint
from tests.conftest import Env


def new_job(max_attempts: int = 3) -> int:
    with session_scope(write=True) as session:
        return create_job(session, JobConfig(epochs=1, seed=0), max_attempts=max_attempts).id


def claim(owner: str, lease_seconds: float = 30) -> Lease | None:
    with session_scope(write=True) as session:
        return claim_next_job(session, owner, lease_seconds)


def recover(after_s: float = 60) -> tuple[int, int]:
    with session_scope(write=True) as session:
        return recover_expired_leases(session, utcnow() + timedelta(seconds=after_s))


def points(job_id: int) -> list[LossPoint]:
    with session_scope() as session:
        return list(job(job_id, session).loss_points)


def job(job_id: int, session: Session | None = None) -> Job:
    if session is not None:
        found = session.get(Job, job_id)
        assert found is not None
        return found
    with session_scope() as session:
        found = session.get(Job, job_id)
        assert found is not None
        return found


def test_an_expired_lease_requeues_the_job_for_the_next_worker(migrated_env: Env) -> None:
    job_id = new_job()
    first = claim("w1")
    assert first == Lease(job_id, "w1", 1)
    assert recover(after_s=10) == (0, 0)  # lease still valid
    assert recover(after_s=60) == (1, 0)
    assert job(job_id).status == JobStatus.QUEUED and job(job_id).worker_id is None
    assert claim("w2") == Lease(job_id, "w2", 2)


def test_the_last_allowed_expiry_fails_the_job_saying_why(migrated_env: Env) -> None:
    job_id = new_job(max_attempts=3)
    for attempt in (1, 2, 3):
        assert claim(f"w{attempt}") == Lease(job_id, f"w{attempt}", attempt)
        assert recover() == ((1, 0) if attempt < 3 else (0, 1))
    failed = job(job_id)
    assert failed.status == JobStatus.FAILED and failed.attempts == 3
    assert failed.error is not None and "lease expired" in failed.error
    assert "every one of its attempts" in failed.error
    assert claim("w4") is None


def test_a_worker_that_lost_its_lease_can_write_nothing(migrated_env: Env) -> None:
    job_id = new_job()
    stale = claim("w1")
    assert stale is not None
    recover()
    fresh = claim("w2")
    assert fresh is not None
    with pytest.raises(LostJob), session_scope(write=True) as session:
        record_loss_point(session, stale, LossRecord(epoch=1, step=10, loss=2.0))
    with pytest.raises(LostJob), session_scope(write=True) as session:
        heartbeat(session, stale, 30, 1, 10)
    with pytest.raises(LostJob), session_scope(write=True) as session:
        release_job(session, stale)
    with session_scope(write=True) as session:
        record_loss_point(session, fresh, LossRecord(epoch=1, step=10, loss=2.0))
    assert [(p.epoch, p.step) for p in points(job_id)] == [(1, 10)]


def test_the_same_worker_with_an_older_attempt_is_refused_too(migrated_env: Env) -> None:
    new_job()
    first = claim("w1")
    assert first is not None
    recover()
    second = claim("w1")  # the same worker id claims it again
    assert second is not None and second.attempt == 2
    with pytest.raises(LostJob), session_scope(write=True) as session:
        heartbeat(session, first, 30, 1, 1)


def test_heartbeats_keep_the_lease(migrated_env: Env) -> None:
    job_id = new_job()
    lease = claim("w1", lease_seconds=1)
    assert lease is not None
    with session_scope(write=True) as session:
        assert heartbeat(session, lease, 120, epoch=1, step=42) is False
    assert recover(after_s=60) == (0, 0)
    assert (job(job_id).progress_epoch, job(job_id).progress_step) == (1, 42)


def test_release_does_not_count_the_attempt(migrated_env: Env) -> None:
    job_id = new_job()
    lease = claim("w1")
    assert lease is not None
    with session_scope(write=True) as session:
        release_job(session, lease)
    assert job(job_id).status == JobStatus.QUEUED and job(job_id).attempts == 0
    assert claim("w2") == Lease(job_id, "w2", 1)


@pytest.mark.database("postgresql")
def test_a_claim_skips_the_job_another_claim_holds_locked(migrated_env: Env) -> None:
    first_job, second_job = new_job(), new_job()
    with session_scope(write=True) as holding:
        held = claim_next_job(holding, "worker-a", 30)  # its transaction stays open
        assert held is not None and held.job_id == first_job
        # FOR UPDATE SKIP LOCKED: the next claim neither waits for that lock nor takes that job.
        with session_scope(write=True) as other:
            other.execute(text("SET LOCAL lock_timeout = '2s'"))
            taken = claim_next_job(other, "worker-b", 30)
        assert taken is not None and taken.job_id == second_job
    assert claim("worker-c") is None
