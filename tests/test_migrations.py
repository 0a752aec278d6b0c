"""The Alembic migrations build exactly the schema the models describe, on each database."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import app.models  # noqa: F401  (the tables join Base.metadata)
from alembic import command
from app.db import Base, get_engine
from app.migrations import alembic_config, head_revision, schema_is_current, upgrade_to_head
from tests.conftest import Env

TABLES = {
    "alembic_version",
    "job",
    "registered_model",
    "model_version",
    "model_alias",
    "alias_move",
    "loss_point",
    "epoch_result",
    "worker",
    "job_event",
    "dataset",
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
