"""Placement: a job that needs GPUs is claimed only by a worker that has them."""

from sqlalchemy import JSON, Integer, String, column, insert, select, table

from alembic import command
from app.db import UTCDateTime, get_engine, session_scope, utcnow
from app.jobs.config import JobConfig
from app.jobs.transitions import claim_next_job, create_job
from app.migrations import alembic_config, upgrade_to_head
from app.models import Job
from tests.conftest import Env


def queue(**config: object) -> int:
    with session_scope(write=True) as session:
        return create_job(session, JobConfig.model_validate({"epochs": 1, "seed": 0, **config})).id


def claim(owner: str, gpus: int) -> int | None:
    with session_scope(write=True) as session:
        lease = claim_next_job(session, owner, 30, gpus=gpus)
    return None if lease is None else lease.job_id


def test_a_worker_claims_only_jobs_its_gpus_can_run(migrated_env: Env) -> None:
    two_gpus = queue(gpus=2)
    one_gpu = queue(device="cuda")
    also_one_gpu = queue(gpus=1)
    anywhere = queue()
    on_cpu = queue(device="cpu", cpu_processes=2)

    # A CPU worker passes over the GPU jobs queued before the ones it can run.
    assert claim("cpu-worker", gpus=0) == anywhere
    assert claim("cpu-worker", gpus=0) == on_cpu
    assert claim("cpu-worker", gpus=0) is None
    # A one-GPU worker takes the one-GPU jobs, never the two-GPU one.
    assert claim("one-gpu-worker", gpus=1) == one_gpu
    assert claim("one-gpu-worker", gpus=1) == also_one_gpu
    assert claim("one-gpu-worker", gpus=1) is None
    assert claim("two-gpu-worker", gpus=2) == two_gpus


def test_a_gpu_worker_also_runs_cpu_jobs_oldest_first(migrated_env: Env) -> None:
    first, second = queue(device="cpu"), queue(device="cuda")
    assert claim("gpu-worker", gpus=1) == first
    assert claim("gpu-worker", gpus=1) == second


def test_the_migration_marks_queued_cuda_jobs_as_needing_a_gpu(env: Env) -> None:
    config = alembic_config()
    command.upgrade(config, "20261122_0003")
    # The job table as revision 0003 left it, before gpus_needed.
    job = table(
        "job",
        column("status", String),
        column("config", JSON),
        column("created_at", UTCDateTime),
        column("progress_epoch", Integer),
        column("progress_step", Integer),
    )
    with get_engine().begin() as connection:
        for device in ("cuda", "cpu", "auto"):
            connection.execute(
                insert(job).values(
                    status="queued",
                    config={"epochs": 1, "device": device},
                    created_at=utcnow(),
                    progress_epoch=0,
                    progress_step=0,
                )
            )
    upgrade_to_head()
    with session_scope() as session:
        needed = session.execute(select(Job.config, Job.gpus_needed).order_by(Job.id)).all()
    assert [(c["device"], n) for c, n in needed] == [("cuda", 1), ("cpu", 0), ("auto", 0)]
