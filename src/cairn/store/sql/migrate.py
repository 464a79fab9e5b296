"""Schema revisions: read the database's, upgrade it to head, compare models and migrations.

Alembic runs from code: the Config is built here with the migrations shipped inside the
package, so users never need an alembic.ini. Upgrades run inside one transaction that
first takes a lock (BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL), so
processes opening a new database at the same moment migrate it once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, exc, text

from cairn.store.sql.engine import transaction

MIGRATIONS = Path(__file__).with_name("migrations")
_PG_LOCK_KEY = 0x63616972  # "cair": serializes Cairn migrations on one PostgreSQL server


def alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def revisions() -> list[str]:
    """Every known revision, oldest first."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory(str(MIGRATIONS))
    return [s.revision for s in reversed(list(script.walk_revisions()))]


def head() -> str:
    return revisions()[-1]


def read_revision(engine: Engine) -> str | None:
    """The database's revision; None for a database Cairn never set up."""
    with transaction(engine, write=False) as conn:
        return _revision(conn)


def _revision(conn: Connection) -> str | None:
    savepoint = conn.begin_nested() if conn.dialect.name == "postgresql" else None
    try:
        value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except (exc.OperationalError, exc.ProgrammingError):  # no alembic_version table yet
        if savepoint is not None:
            savepoint.rollback()
        return None
    if savepoint is not None:
        savepoint.commit()
    return None if value is None else str(value)


def upgrade(engine: Engine, target: str = "heads") -> tuple[str | None, str | None]:
    """Upgrade to `target` under the migration lock; (revision before, revision after)."""
    from alembic import command

    with transaction(engine, write=True) as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        before = _revision(conn)
        command.upgrade(alembic_config(conn), target)
        return before, _revision(conn)


def differences(engine: Engine) -> list[Any]:
    """What `alembic check` would report: differences between tables.py and the database."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from cairn.store.sql.tables import metadata

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))
