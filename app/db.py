"""Database engine, session factory and the declarative base."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, DateTime, Engine, MetaData, create_engine, event
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from app.settings import get_settings

T = TypeVar("T")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC timestamps, also on SQLite, which stores no zone."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use utcnow()")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


SQLITE_IMMEDIATE = "trainserve_sqlite_immediate"


def _sqlite_pragmas(busy_timeout_ms: int) -> Any:
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # We emit BEGIN ourselves (see _sqlite_begin), so the driver must not.
        dbapi_connection.isolation_level = None
        # WAL lets the API read while the worker writes; the busy timeout makes
        # writers wait for each other instead of failing with "database is locked".
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    return on_connect


def _sqlite_begin(connection: Connection) -> None:
    # A write transaction that starts as a read can fail at once with "database is locked"
    # when another writer commits first (the busy timeout does not apply then). BEGIN
    # IMMEDIATE takes the write lock up front and so waits its turn instead.
    immediate = connection.get_execution_options().get(SQLITE_IMMEDIATE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@lru_cache
def get_engine(url: str | None = None) -> Engine:
    """One engine per database URL, SQLite configured for two processes."""
    settings = get_settings()
    url = url or settings.database_url
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url,
        connect_args={
            "timeout": settings.sqlite_busy_timeout_ms / 1000,
            "check_same_thread": False,
        },
    )
    event.listen(engine, "connect", _sqlite_pragmas(settings.sqlite_busy_timeout_ms))
    event.listen(engine, "begin", _sqlite_begin)
    return engine


@lru_cache
def get_session_factory(url: str | None = None, write: bool = False) -> sessionmaker[Session]:
    """Sessions on the engine for url; `write` ones take SQLite's write lock when they begin."""
    engine = get_engine(url)
    bind = engine.execution_options(**{SQLITE_IMMEDIATE: True}) if write else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


@contextmanager
def session_scope(url: str | None = None, *, write: bool = False) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = get_session_factory(url, write)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def in_write_session(record: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`record(session, *args, **kwargs)` in a write transaction of its own."""
    with session_scope(write=True) as session:
        return record(session, *args, **kwargs)
