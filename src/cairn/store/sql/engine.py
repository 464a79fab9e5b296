"""Engines and transactions for SQLite and PostgreSQL.

SQLite runs in WAL mode (readers never block the writer). Run data is written with
synchronous=NORMAL: a commit survives the process being killed; an OS crash or power
loss may roll back the last commits but never corrupts the file — FULL would cost a
disk flush per log_batch. Registry changes (versions, stages, aliases) are written with
synchronous=FULL: once a promotion returns, it survives a power loss too. Every write
transaction starts with BEGIN IMMEDIATE, so concurrent writers queue on the busy timeout
instead of failing with "database is locked" when a read lock would need upgrading.

PostgreSQL runs at READ COMMITTED; writes that must serialize (version numbers,
promotions) lock the registered model row with SELECT … FOR UPDATE.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc

from cairn.errors import ConflictError, DatabaseError, UserError

BUSY_TIMEOUT_S = 60.0
# PostgreSQL connections each process keeps, and how many more it may open at a peak. A
# server process answers up to 40 requests at once (anyio's thread limit); with
# SQLAlchemy's default (5 kept, 10 more) requests past 15 waited for a connection, and
# those past 5 were closed on return and opened again (a backend process each) at the
# next peak: a 2-worker server's registry reads at 32 clients halved. Connections open
# only when needed, so an idle process holds few.
POOL_SIZE_ENV, POOL_SIZE = "CAIRN_DB_POOL_SIZE", 20
MAX_OVERFLOW_ENV, MAX_OVERFLOW = "CAIRN_DB_MAX_OVERFLOW", 20
WRITE = "cairn_write"  # execution option: this transaction writes
DURABLE = "cairn_durable"  # execution option: flush this commit to disk (SQLite FULL)


def make_engine(url: str) -> Engine:
    """An engine for `url` (an SQLAlchemy URL: sqlite:///… or postgresql+psycopg://…)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True,
                         pool_size=_setting(POOL_SIZE_ENV, POOL_SIZE, least=1),
                         max_overflow=_setting(MAX_OVERFLOW_ENV, MAX_OVERFLOW, least=0))


def _setting(name: str, default: int, least: int) -> int:
    import os

    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = least - 1
    if value < least:
        raise UserError(f"{name}={raw!r} is not a whole number of at least {least}; unset "
                        f"it for the default ({default})")
    return value


def _set_wal(cursor: Any) -> None:
    """Switching a file to WAL needs it to itself, and SQLite answers "database is locked"
    at once, without the busy handler, while another process writes it in the old mode
    (the first opener of a new file, creating the schema): retry within the timeout."""
    import sqlite3
    import time

    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit BEGIN is DEFERRED).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        _set_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # LIKE is case-sensitive, as on PostgreSQL and in MLflow; ILIKE is the other one.
        cursor.execute("PRAGMA case_sensitive_like=ON")
        cursor.close()
        record.info["synchronous"] = "NORMAL"

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        level = "FULL" if options.get(DURABLE) else "NORMAL"
        if connection.info.get("synchronous") != level:  # set outside the transaction
            connection.exec_driver_sql(f"PRAGMA synchronous={level}")
            connection.info["synchronous"] = level
        connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get(WRITE) else "BEGIN")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def transaction(engine: Engine, write: bool, durable: bool = False) -> Iterator[Connection]:
    """One transaction, committed when the block ends, rolled back on any error.

    `durable`: the commit reaches the disk before it returns, even on SQLite.
    """
    try:
        with engine.connect() as conn:
            if write:
                conn = conn.execution_options(**{WRITE: True, DURABLE: durable})
            with conn.begin():
                yield conn
    except exc.IntegrityError as e:  # a concurrent writer got there first
        raise ConflictError(f"conflicting change at {safe_url(engine)}: {_first_line(e.orig)}; "
                            "retry") from e
    except exc.DataError as e:  # a value out of the column's range, a NUL in text…
        raise UserError(f"a value the database cannot store: {_first_line(e.orig)}") from e
    except OverflowError as e:  # sqlite3 refuses integers beyond 64 bits before SQL runs
        raise UserError(f"a number too large for the database: {e}") from e
    except exc.DBAPIError as e:  # unreachable, locked, not a database, no permission…
        raise DatabaseError(f"database error at {safe_url(engine)}: "
                            f"{_first_line(e.orig)}") from e


def safe_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _first_line(error: object) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
