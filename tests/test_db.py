import pytest
from sqlalchemy import text

from app.db import get_engine
from tests.conftest import Env


@pytest.mark.database("sqlite")
def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(migrated_env: Env) -> None:
    with get_engine().connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30_000
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
