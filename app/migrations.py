"""Applying the Alembic migrations and checking that the schema is current."""

from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import as_file, files
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from alembic import command
from app.db import get_engine
from app.settings import get_settings

# The repository's alembic/ folder, as the wheel carries it (setup.py maps it).
MIGRATIONS_PACKAGE = "app.migration_scripts"
SOURCE_MIGRATIONS = Path(__file__).resolve().parent.parent / "alembic"


def script_location() -> Path:
    """The folder holding the migrations' env.py and versions/."""
    try:
        env_py = files(MIGRATIONS_PACKAGE) / "env.py"
    except ModuleNotFoundError:
        # A source checkout, the editable install included: there the package does not exist
        # (setuptools' editable finder cannot map a folder without __init__.py, and alembic/
        # must not get one: run from the repository root, it would hide the alembic library).
        return SOURCE_MIGRATIONS
    with as_file(env_py) as path:  # installed as plain files: this is the file itself
        return path.parent


def alembic_config(database_url: str | None = None) -> Config:
    """An Alembic config for the project's migrations and the given (or configured) database.

    No alembic.ini: that file serves developers who run `alembic` in the repository (logging,
    the revision file names); applying migrations needs only the scripts and the URL.
    """
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    config.attributes["database_url"] = database_url or get_settings().database_url
    return config


def upgrade_to_head(database_url: str | None = None) -> None:
    """Bring the database schema up to the newest migration."""
    command.upgrade(alembic_config(database_url), "head")


def head_revision() -> str | None:
    """The newest migration's revision id."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def schema_is_current(database_url: str | None = None) -> bool:
    """True when the database answers and carries the newest migration."""
    try:
        with get_engine(database_url).connect() as connection:
            current = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError:
        return False
    return current is not None and current == head_revision()


# SQLite's foreign keys are off while migrations run, as SQLite's own guide to altering tables
# says. A batch ALTER on SQLite copies a table into a new one, drops the old one and renames the
# copy. With foreign keys on, dropping the old `job` table would cascade: every loss point,
# epoch, event and tag of every job would go with it (and a RESTRICT would refuse the
# migration). Off while the tables are rebuilt, then checked, then on again.


class ForeignKeysBroken(RuntimeError):
    """A migration left rows that point at rows that do not exist."""


@contextmanager
def sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """Foreign keys off for what runs inside, on SQLite; nothing on other databases."""
    if connection.dialect.name != "sqlite":
        yield
        return
    # SQLite ignores this pragma inside a transaction; the driver does not open one itself (the
    # engine emits BEGIN, app/db.py), so on the raw connection it takes effect now.
    raw = connection.connection.driver_connection
    assert raw is not None
    raw.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
        broken = raw.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise ForeignKeysBroken(f"the migration left rows with dangling references: {broken}")
    finally:
        raw.execute("PRAGMA foreign_keys=ON")
