"""The database each test runs against: a fresh SQLite file, or a fresh PostgreSQL database.

`pytest --database=postgresql` (with TRAINSERVE_TEST_POSTGRES_URL naming a server's maintenance
database, e.g. postgresql+psycopg://postgres@127.0.0.1:5433/postgres) runs the suite against a
real PostgreSQL server: each test gets a database of its own, dropped afterwards.
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_URL_VARIABLE = "TRAINSERVE_TEST_POSTGRES_URL"


def backend(config: pytest.Config) -> str:
    return str(config.getoption("--database"))


def postgres_server_url() -> str:
    url = os.environ.get(POSTGRES_URL_VARIABLE)
    if not url:
        raise pytest.UsageError(
            f"--database=postgresql needs {POSTGRES_URL_VARIABLE}, e.g. "
            "postgresql+psycopg://postgres@127.0.0.1:5433/postgres (scripts/postgres.sh starts one)"
        )
    return url


@contextmanager
def fresh_database(config: pytest.Config, folder: Path) -> Iterator[str]:
    """The URL of an empty database for one test, removed when the test is done."""
    if backend(config) == "sqlite":
        yield f"sqlite:///{folder / 'trainserve.db'}"
        return
    server = make_url(postgres_server_url())
    name = f"trainserve_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield server.set(database=name).render_as_string(hide_password=False)
        with admin.connect() as connection:
            # FORCE ends what worker processes the test started may still hold open.
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
