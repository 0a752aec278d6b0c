"""The database out of space or out of reach: telling it from other errors, waiting it out, and
saying so once when it starts and once when it ends rather than at every retry."""

import logging
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.db import session_scope

T = TypeVar("T")

SQLITE_FULL = 13  # sqlite3's extended error code for "database or disk is full"
# PostgreSQL's SQLSTATEs: disk_full; the connection exception class; and the server shutting
# down, crashing or starting up (admin_shutdown, crash_shutdown, cannot_connect_now).
PG_DISK_FULL = "53100"
PG_CONNECTION_CLASS = "08"
PG_GOING_AWAY = frozenset({"57P01", "57P02", "57P03"})
FIRST_RETRY_DELAY_S = 0.5
LONGEST_RETRY_DELAY_S = 10.0


class Outage(StrEnum):
    DISK_FULL = "the database's disk is full"
    UNREACHABLE = "the database cannot be reached"


def outage_of(exc: BaseException) -> Outage | None:
    """The outage an error from the database means, or None for any other error."""
    if not isinstance(exc, DBAPIError):
        return None
    if exc.connection_invalidated:
        return Outage.UNREACHABLE
    driver_error = exc.orig
    if getattr(driver_error, "sqlite_errorcode", None) == SQLITE_FULL:
        return Outage.DISK_FULL
    sqlstate = getattr(driver_error, "sqlstate", "")
    if sqlstate == PG_DISK_FULL:
        return Outage.DISK_FULL
    if sqlstate is None or sqlstate.startswith(PG_CONNECTION_CLASS) or sqlstate in PG_GOING_AWAY:
        # psycopg gives no SQLSTATE when it could not talk to the server at all.
        return Outage.UNREACHABLE
    return None


class DatabaseOutage(Exception):
    """The database stayed out of space or out of reach longer than the limit."""

    def __init__(self, outage: Outage, waited_s: float) -> None:
        super().__init__(f"{outage} (for {waited_s:.0f} s)")
        self.outage = outage


class OutageLog:
    """One warning when an outage starts (or changes kind), one line when it ends with how long
    it lasted and how many tries failed: a bounded log however long it lasts."""

    def __init__(self, log: logging.Logger, who: str) -> None:
        self.log, self.who = log, who
        self.lock = threading.Lock()
        self.current: Outage | None = None
        self.since = 0.0
        self.failures = 0

    def failed(self, outage: Outage, exc: BaseException) -> None:
        with self.lock:
            self.failures += 1
            if outage is self.current:
                return
            if self.current is None:
                self.since = time.monotonic()
            self.current = outage
        driver_error = getattr(exc, "orig", exc)
        first_line = str(driver_error).strip().splitlines()[0] if str(driver_error) else ""
        self.log.warning("%s: %s (%s); waiting for it", self.who, outage, first_line)

    def succeeded(self) -> None:
        with self.lock:
            if self.current is None:
                return
            outage, lasted, failures = self.current, time.monotonic() - self.since, self.failures
            self.current, self.failures = None, 0
        self.log.warning(
            "%s: the database can be written again after %.0f s (%s; %d tries failed)",
            self.who,
            lasted,
            outage,
            failures,
        )


def retry_through_outages(
    write: Callable[[], T],
    outages: OutageLog,
    limit_s: float,
    stop: threading.Event | None = None,
) -> T:
    """`write()`, tried again with growing pauses while the database is out of space or out of
    reach; DatabaseOutage once that has lasted `limit_s`, or when `stop` is set. Other errors
    go through at once."""
    started: float | None = None
    delay_s = FIRST_RETRY_DELAY_S
    while True:
        try:
            result = write()
        except Exception as exc:
            outage = outage_of(exc)
            if outage is None:
                raise
            outages.failed(outage, exc)
            now = time.monotonic()
            started = now if started is None else started
            if now - started >= limit_s or (stop is not None and stop.is_set()):
                raise DatabaseOutage(outage, now - started) from exc
            pause_s = min(delay_s, started + limit_s - now)
            if stop is not None:
                stop.wait(pause_s)
            else:
                time.sleep(pause_s)
            delay_s = min(2 * delay_s, LONGEST_RETRY_DELAY_S)
            continue
        outages.succeeded()
        return result


def database_outage() -> Outage | None:
    """Whether the database can be written now, by writing to it: a row rewritten as it is (the
    schema's version), which needs the space and the connection any other write needs."""
    try:
        with session_scope(write=True) as session:
            session.execute(text("UPDATE alembic_version SET version_num = version_num"))
    except DBAPIError as exc:
        outage = outage_of(exc)
        if outage is None:
            raise
        return outage
    return None
