"""Alembic environment: the URL comes from trainserve's settings, not alembic.ini."""

from logging.config import fileConfig

from alembic import context
from app import models  # noqa: F401  (registers the tables on Base.metadata)
from app.db import Base, get_engine
from app.migrations import sqlite_foreign_keys_off
from app.settings import get_settings

config = context.config
# Only alembic's own command line reads alembic.ini; trainserve applies migrations without it and
# keeps its own logging.
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
target_metadata = Base.metadata
database_url = config.attributes.get("database_url") or get_settings().database_url


if context.is_offline_mode():
    context.configure(url=database_url, target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    with get_engine(database_url).connect() as connection:
        # render_as_batch lets later ALTERs work on SQLite, which cannot alter columns in place.
        context.configure(
            connection=connection, target_metadata=target_metadata, render_as_batch=True
        )
        with sqlite_foreign_keys_off(connection), context.begin_transaction():
            context.run_migrations()
