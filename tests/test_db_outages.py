"""Telling an outage of the database from other errors, and waiting one out, on real errors."""

import logging
import re
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from app.db_outages import (
    DatabaseOutage,
    Outage,
    OutageLog,
    outage_of,
    retry_through_outages,
)

log = logging.getLogger("tests.outages")


class SmallDatabase:
    """A real SQLite file whose size is capped (PRAGMA max_page_count): past the cap, writes
    fail with SQLite's own "database or disk is full", as on a full disk."""

    def __init__(self, path: Path, max_pages: int) -> None:
        self.max_pages = max_pages
        self.engine: Engine = create_engine(f"sqlite:///{path}")
        event.listen(self.engine, "connect", self._cap)
        with self.engine.begin() as connection:
            connection.execute(text("CREATE TABLE blob (data BLOB)"))

    def _cap(self, dbapi_connection: object, _record: object) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {self.max_pages}")  # type: ignore[attr-defined]

    def write(self) -> None:
        with self.engine.begin() as connection:
            connection.execute(text("INSERT INTO blob VALUES (zeroblob(64 * 1024))"))

    def make_room(self, pages: int) -> None:
        self.max_pages = pages
        self.engine.dispose()  # new connections take the new cap


def full_disk_error(tmp_path: Path) -> DBAPIError:
    database = SmallDatabase(tmp_path / "full.db", max_pages=4)
    with pytest.raises(DBAPIError) as raised:
        database.write()
    return raised.value


def test_a_full_database_is_told_from_other_errors(tmp_path: Path) -> None:
    full = full_disk_error(tmp_path)
    assert str(full.orig) == "database or disk is full"
    assert outage_of(full) is Outage.DISK_FULL
    engine = create_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with pytest.raises(DBAPIError) as no_table, engine.begin() as connection:
        connection.execute(text("SELECT * FROM missing"))
    assert outage_of(no_table.value) is None
    assert outage_of(ValueError("database or disk is full")) is None


def test_a_server_that_does_not_answer_is_unreachable() -> None:
    pytest.importorskip("psycopg")
    engine = create_engine("postgresql+psycopg://postgres@127.0.0.1:9/none")
    with pytest.raises(DBAPIError) as refused:
        engine.connect()
    assert outage_of(refused.value) is Outage.UNREACHABLE


def test_a_write_waits_until_there_is_room_and_says_so_twice(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    database = SmallDatabase(tmp_path / "small.db", max_pages=4)
    tries = 0

    def write() -> None:
        nonlocal tries
        tries += 1
        if tries == 4:
            database.make_room(pages=1000)
        database.write()

    with caplog.at_level(logging.INFO, logger="tests.outages"):
        retry_through_outages(write, OutageLog(log, "job 7", settle_s=0), limit_s=60)
    assert tries == 4
    # Between the first failure and the last: the pauses after the first two (0.5 s, 1 s).
    assert [re.sub(r"after \d+ s", "after N s", r.getMessage()) for r in caplog.records] == [
        "job 7: the database's disk is full (database or disk is full); waiting for it",
        "job 7: the database can be written again after N s (the database's disk is full; "
        "3 tries failed)",
    ]


def test_an_outage_ends_only_once_writes_have_stopped_failing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outages = OutageLog(log, "worker w", settle_s=0.5)
    full = full_disk_error(tmp_path)
    with caplog.at_level(logging.INFO, logger="tests.outages"):
        for _ in range(3):  # a small write gets through between two larger ones that fail
            outages.failed(Outage.DISK_FULL, full)
            outages.succeeded()
        time.sleep(0.6)
        outages.succeeded()
        outages.succeeded()
    assert [r.getMessage()[:40] for r in caplog.records] == [
        "worker w: the database's disk is full (d",
        "worker w: the database can be written ag",
    ]


def test_an_outage_longer_than_the_limit_or_a_stop_gives_up(tmp_path: Path) -> None:
    database = SmallDatabase(tmp_path / "small.db", max_pages=4)
    with pytest.raises(DatabaseOutage) as gave_up:
        retry_through_outages(database.write, OutageLog(log, "job 7"), limit_s=1)
    assert gave_up.value.outage is Outage.DISK_FULL
    assert str(gave_up.value) == "the database's disk is full (for 1 s)"
    stopping = threading.Event()
    stopping.set()
    with pytest.raises(DatabaseOutage):
        retry_through_outages(database.write, OutageLog(log, "job 7"), 600, stopping)


def test_other_errors_go_through_at_once(tmp_path: Path) -> None:
    outages = OutageLog(log, "job 7")

    def broken() -> None:
        raise KeyError("not the database")

    with pytest.raises(KeyError):
        retry_through_outages(broken, outages, limit_s=60)
    assert outages.failures == 0
