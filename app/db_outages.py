"""The database out of space or out of reach: telling it from other errors, waiting it out, and
saying so once when it starts and once when it ends rather than at every retry."""

import logging
import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from app.backoff import Backoff
from app.db import session_scope
from app.settings import get_settings

T = TypeVar("T")

SQLITE_FULL = 13  # sqlite3's extended error code for "database or disk is full"
SQLITE_BUSY_CODES = frozenset({5, 6, 517})  # busy, locked, busy snapshot
PG_LOCK_NOT_AVAILABLE = "55P03"
PROBE_LOCK_WAIT_MS = 2000
# PostgreSQL's SQLSTATEs: disk_full; the connection exception class; and the server shutting
# down, crashing or starting up (admin_shutdown, crash_shutdown, cannot_connect_now).
PG_DISK_FULL = "53100"
PG_CONNECTION_CLASS = "08"
PG_GOING_AWAY = frozenset({"57P01", "57P02", "57P03"})
OUTAGE_SETTLE_S = 2.0


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
    if sqlstate and (sqlstate.startswith(PG_CONNECTION_CLASS) or sqlstate in PG_GOING_AWAY):
        return Outage.UNREACHABLE
    # psycopg gives no SQLSTATE when it could not talk to the server at all, but also for
    # errors of its own (a NUL byte in a text): only its operational errors are the server's.
    if sqlstate is None and isinstance(exc, OperationalError | InterfaceError):
        return Outage.UNREACHABLE
    return None


class DatabaseOutage(Exception):
    """The database stayed out of space or out of reach longer than the limit."""

    def __init__(self, outage: Outage, waited_s: float) -> None:
        super().__init__(f"{outage} (for {waited_s:.0f} s)")
        self.outage = outage


class OutageLog:
    """One warning when an outage starts (or changes kind), one line when it ends with how long
    it lasted and how many tries failed: a bounded log however long it lasts.

    Several threads may share one (a job's heartbeat and its training writes): an outage ends
    only at a success that comes `settle_s` after the last failure, so that a small write
    that still fits while larger ones fail does not end it and start it again at every try.
    """

    def __init__(self, log: logging.Logger, who: str, settle_s: float = OUTAGE_SETTLE_S) -> None:
        self.log, self.who, self.settle_s = log, who, settle_s
        self.lock = threading.Lock()
        self.current: Outage | None = None
        self.since = 0.0
        self.last_failure = 0.0
        self.failures = 0

    def failed(self, outage: Outage, exc: BaseException) -> None:
        with self.lock:
            self.failures += 1
            self.last_failure = time.monotonic()
            if outage is self.current:
                return
            if self.current is None:
                self.since = self.last_failure
            self.current = outage
            driver_error = getattr(exc, "orig", exc)
            first_line = (str(driver_error).strip().splitlines() or [""])[0]
            self.log.warning("%s: %s (%s); waiting for it", self.who, outage, first_line)

    def succeeded(self) -> None:
        with self.lock:
            now = time.monotonic()
            if self.current is None or now - self.last_failure < self.settle_s:
                return
            self.log.warning(
                "%s: the database can be written again after %.0f s (%s; %d tries failed)",
                self.who,
                self.last_failure - self.since,
                self.current,
                self.failures,
            )
            self.current, self.failures = None, 0


def retry_through_outages(
    write: Callable[[], T],
    outages: OutageLog,
    limit_s: float,
    stop: threading.Event | None = None,
) -> T:
    """`write()`, tried again with growing pauses while the database is out of space or out of
    reach; DatabaseOutage once that has lasted `limit_s`, or when `stop` is set. Other errors
    go through at once."""
    backoff = Backoff(limit_s, stop)
    while True:
        try:
            result = write()
        except Exception as exc:
            outage = outage_of(exc)
            if outage is None:
                raise
            outages.failed(outage, exc)
            if not backoff.pause():
                raise DatabaseOutage(outage, backoff.waited_s) from exc
            continue
        outages.succeeded()
        return result


def database_outage() -> Outage | None:
    """Whether the database can be written now, by writing to it: a row rewritten as it is (the
    schema's version), which needs the space and the connection any other write needs. A
    database busy with another writer past PROBE_LOCK_WAIT_MS is writable all the same."""
    try:
        # A deferred transaction, so that the short wait is set before the write lock is asked
        # for (a write session would ask for it first, and wait the full busy timeout).
        with session_scope() as session:
            sqlite = session.get_bind().dialect.name == "sqlite"
            wait = (
                f"PRAGMA busy_timeout = {PROBE_LOCK_WAIT_MS}"
                if sqlite
                else f"SET LOCAL lock_timeout = '{PROBE_LOCK_WAIT_MS}ms'"
            )
            session.execute(text(wait))
            try:
                session.execute(text("UPDATE alembic_version SET version_num = version_num"))
            finally:
                if sqlite:  # the connection goes back to the pool with its usual wait
                    busy_ms = get_settings().sqlite_busy_timeout_ms
                    session.execute(text(f"PRAGMA busy_timeout = {busy_ms}"))
    except DBAPIError as exc:
        if _busy(exc):
            return None
        outage = outage_of(exc)
        if outage is None:
            raise
        return outage
    return None


def _busy(exc: DBAPIError) -> bool:
    """The write lock was held by another writer past the probe's wait."""
    driver_error = exc.orig
    return (
        getattr(driver_error, "sqlite_errorcode", None) in SQLITE_BUSY_CODES
        or getattr(driver_error, "sqlstate", None) == PG_LOCK_NOT_AVAILABLE
    )
