"""The Alembic migrations build exactly the schema the models describe, on each database, and
keep what was there."""

import json

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

import app.models  # noqa: F401  (the tables join Base.metadata)
from alembic import command
from app.db import Base, get_engine, session_scope
from app.jobs.listing import JobFilter, find_jobs
from app.migrations import alembic_config, head_revision, schema_is_current, upgrade_to_head
from tests.conftest import Env

TABLES = {
    "alembic_version",
    "job",
    "job_tag",
    "registered_model",
    "model_version",
    "model_alias",
    "alias_move",
    "loss_point",
    "epoch_result",
    "worker",
    "job_event",
    "dataset",
    "weights_file",
}


def differences() -> list[object]:
    with get_engine().connect() as connection:
        return list(compare_metadata(MigrationContext.configure(connection), Base.metadata))


def test_head_matches_the_models(env: Env) -> None:
    assert not schema_is_current()
    upgrade_to_head()
    assert schema_is_current()
    assert set(inspect(get_engine()).get_table_names()) == TABLES
    assert differences() == []


def test_every_migration_downgrades_and_upgrades_again(env: Env) -> None:
    upgrade_to_head()
    config = alembic_config()
    command.downgrade(config, "base")
    assert set(inspect(get_engine()).get_table_names()) == {"alembic_version"}
    upgrade_to_head()
    with get_engine().connect() as connection:
        assert MigrationContext.configure(connection).get_current_revision() == head_revision()
    assert differences() == []


def test_the_upgrade_registers_what_served_predict_before(env: Env) -> None:
    config = alembic_config()
    command.upgrade(config, "20261122_0008")
    jobs = [
        (1, "succeeded", {"dataset": "cifar10", "epochs": 2}, "2026-11-20 10:00:00", 0.41),
        (2, "succeeded", {"dataset": "cifar10", "epochs": 1}, "2026-11-21 10:00:00", 0.22),
        (
            3,
            "succeeded",
            {"dataset": "ds-0123456789ab", "model": "mlp"},
            "2026-11-22 10:00:00",
            0.9,
        ),
        (4, "failed", {"dataset": "cifar10"}, "2026-11-23 10:00:00", None),
    ]
    with get_engine().begin() as connection:
        for job_id, status, config_values, finished, accuracy in jobs:
            connection.execute(
                text(
                    "INSERT INTO job (id, status, config, created_at, finished_at, attempts, "
                    "max_attempts, cancel_requested, gpus_needed, progress_epoch, progress_step, "
                    "model_path, model_sha256, test_accuracy) VALUES (:id, :status, :config, "
                    ":finished, :finished, 1, 3, false, 0, 0, 0, :path, :sha, :accuracy)"
                ),
                {
                    "id": job_id,
                    "status": status,
                    "config": json.dumps(config_values),
                    "finished": finished,
                    "path": None if status == "failed" else f"jobs/{job_id}/model-attempt1.pt",
                    "sha": "a" * 64,
                    "accuracy": accuracy,
                },
            )
    upgrade_to_head()
    with get_engine().connect() as connection:
        # The newest succeeded image job: job 2 (job 3 is a table model's, job 4 failed).
        version = connection.execute(
            text("SELECT version, job_id, test_accuracy, model_path FROM model_version")
        ).one()
        assert tuple(version) == (1, 2, 0.22, "jobs/2/model-attempt1.pt")
        alias = connection.execute(text("SELECT alias, version FROM model_alias")).one()
        assert tuple(alias) == ("production", 1)
        moved = connection.execute(
            text("SELECT from_version, to_version, moved_by FROM alias_move")
        ).one()
        assert tuple(moved) == (None, 1, "upgrade")


def test_datasets_uploaded_before_attempts_start_with_none(env: Env) -> None:
    command.upgrade(alembic_config(), "20261130_0010")
    with get_engine().begin() as connection:
        connection.execute(
            text(
                "INSERT INTO dataset (id, name, kind, status, options, upload_bytes, created_at) "
                "VALUES ('ds-0123456789ab', 'a.zip', 'images', 'queued', '{}', 1, "
                "'2026-11-29 10:00:00')"
            )
        )
    upgrade_to_head()
    with get_engine().connect() as connection:
        row = connection.execute(
            text("SELECT attempts, max_attempts, attempt_history FROM dataset")
        ).one()
    history = row[2] if isinstance(row[2], list) else json.loads(row[2])
    assert (row[0], row[1], history) == (0, 3, [])


def test_jobs_from_before_labels_have_none_and_a_downgrade_keeps_the_jobs(env: Env) -> None:
    command.upgrade(alembic_config(), "20261130_0011")
    with get_engine().begin() as connection:
        connection.execute(
            text(
                "INSERT INTO job (id, status, config, created_at, attempts, max_attempts, "
                "cancel_requested, gpus_needed, progress_epoch, progress_step) VALUES "
                "(1, 'queued', '{}', '2026-11-29 10:00:00', 0, 3, false, 0, 0, 0)"
            )
        )
    upgrade_to_head()
    with session_scope() as session:  # a config from before `model` existed has its default
        found, total = find_jobs(
            session, JobFilter(model="tutorial_cnn", dataset="cifar10"), "-created_at", 10, 0
        )
        assert ([job.id for job in found], total) == ([1], 1)
    with get_engine().begin() as connection:
        assert tuple(connection.execute(text("SELECT name, notes FROM job")).one()) == (None, None)
        connection.execute(text("UPDATE job SET name = 'baseline'"))
        connection.execute(text("INSERT INTO job_tag VALUES (1, 'sweep', 'lr')"))
        connection.execute(
            text("INSERT INTO loss_point (job_id, epoch, step, loss) VALUES (1, 1, 5, 2.25)")
        )
    command.downgrade(alembic_config(), "20261130_0011")
    assert "job_tag" not in inspect(get_engine()).get_table_names()
    with get_engine().connect() as connection:
        assert connection.execute(text("SELECT id FROM job")).scalars().all() == [1]
        # On SQLite the job table is rebuilt: its children must not go with the old one.
        assert connection.execute(text("SELECT loss FROM loss_point")).scalars().all() == [2.25]
    upgrade_to_head()
    with get_engine().connect() as connection:
        assert tuple(connection.execute(text("SELECT name FROM job")).one()) == (None,)
        assert connection.execute(text("SELECT count(*) FROM job_tag")).scalar() == 0
