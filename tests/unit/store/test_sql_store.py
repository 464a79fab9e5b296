"""What the SQL store promises beyond the interface: round trips, SQLite settings (and
opening a file another process is still creating), imports."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import event, text

from cairn.errors import UserError
from cairn.store.base import MetadataStore
from cairn.store.entities import Metric, Param, RunTag
from cairn.store.open import open_store, sqlalchemy_url
from cairn.store.sql.engine import make_engine, transaction
from cairn.store.sql.store import SqlStore

pytestmark = pytest.mark.not_on_rest  # statement counts and SQL: the database itself


@contextmanager
def counting_statements(store: MetadataStore) -> Iterator[list[str]]:
    assert isinstance(store, SqlStore)
    seen: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        seen.append(statement.split()[0].upper())

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", count)


def test_log_batch_costs_a_few_statements_however_many_rows(store: MetadataStore) -> None:
    run_id = store.create_run("0", "ana", 1).info.run_id
    metrics = [Metric(f"m{i % 50}", float(i), 1000 + i, i) for i in range(5000)]
    with counting_statements(store) as seen:
        store.log_batch(run_id, metrics=metrics, params=[Param("lr", "0.1")],
                        tags=[RunTag("t", "x")])
    # lock the run, read existing params, insert params, metrics, latest values, tags
    assert len([s for s in seen if s not in ("BEGIN", "COMMIT")]) <= 8, seen
    assert len(store.get_metric_history(run_id, "m7")) == 100
    assert store.get_run(run_id).data.metrics["m7"] == 4957.0


def test_search_loads_a_page_of_runs_in_a_few_statements(store: MetadataStore) -> None:
    for i in range(30):
        run_id = store.create_run("0", "ana", i).info.run_id
        store.log_batch(run_id, metrics=[Metric("f1", i / 30, 1, 0)], params=[Param("p", "v")])
    with counting_statements(store) as seen:
        found = store.search_runs(["0"], "metrics.f1 > 0.5", order_by=["metrics.f1 DESC"])
    assert [r.data.metrics["f1"] for r in found] == sorted(
        (i / 30 for i in range(16, 30)), reverse=True)
    assert len([s for s in seen if s == "SELECT"]) == 4  # the page, params, tags, metrics


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "c.db"))
    assert isinstance(store, SqlStore)
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 10_000
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        store.close()


def test_sqlite_flushes_registry_commits_to_disk_and_run_data_lazily(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "c.db"))
    assert isinstance(store, SqlStore)
    try:
        with transaction(store.engine, write=True, durable=True) as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        with transaction(store.engine, write=True) as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        store.create_model_version("m", "/m", "d")  # durable, then back to lazy writes
        store.log_batch(store.create_run("0", "ana", 1).info.run_id,
                        metrics=[Metric("x", 1.0, 1, 0)])
    finally:
        store.close()


@pytest.mark.parametrize("module", ["cairn.store.base", "cairn.store.open",
                                    "cairn.store.search", "cairn.store.entities"])
def test_store_interface_imports_stay_light(module: str) -> None:
    code = (f"import sys, {module}; "
            "print(','.join(m for m in ('sqlalchemy', 'alembic') if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert loaded == ""


# What the first opener of a new file does before it has switched the file to WAL: a
# write transaction in SQLite's default journal mode.
CREATOR = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("CREATE TABLE scratch (x)")
db.execute("BEGIN IMMEDIATE")
db.execute("INSERT INTO scratch VALUES (1)")
print("writing", flush=True)
time.sleep(1.5)
db.execute("COMMIT")
"""


def test_a_second_opener_waits_for_the_creator_instead_of_failing(tmp_path: Path) -> None:
    """Switching to WAL needs the file to itself; SQLite answers "database is locked" at
    once rather than calling the busy handler, so eight processes starting their first
    run together failed now and then (test_store_concurrency's new-file test flaked)."""
    db = tmp_path / "cairn.db"
    with subprocess.Popen([sys.executable, "-c", CREATOR, str(db)],
                          stdout=subprocess.PIPE, text=True) as creator:
        assert creator.stdout is not None and creator.stdout.readline() == "writing\n"
        started = time.monotonic()
        open_store(f"sqlite:///{db}").close()
        assert time.monotonic() - started < 30


@pytest.mark.postgres
def test_a_busy_server_process_holds_and_keeps_enough_postgres_connections(
        postgres_url: str) -> None:
    """A server process answers many requests at once: 24 of them each get a connection
    at the same time (SQLAlchemy's default pool stops at 15 and makes the rest wait), and
    the next burst of 16 reuses kept connections instead of opening new backends."""
    engine = make_engine(sqlalchemy_url(postgres_url))
    opened = []
    event.listen(engine, "connect", lambda *_: opened.append(1))

    def burst(size: int) -> None:
        together = threading.Barrier(size, timeout=10)

        def request(_: int) -> None:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
                together.wait()  # every request holds its connection here at once

        with ThreadPoolExecutor(size) as pool:
            list(pool.map(request, range(size)))

    try:
        burst(24)
        first = len(opened)
        burst(16)
    finally:
        engine.dispose()
    assert first == 24 and len(opened) == first


@pytest.mark.parametrize("value", ["none", "0", "-3", "1.5"])
def test_a_bad_pool_size_is_one_clear_error(value: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAIRN_DB_POOL_SIZE", value)
    with pytest.raises(UserError, match=f"CAIRN_DB_POOL_SIZE='{value}' is not a whole"):
        make_engine("postgresql+psycopg://u@127.0.0.1:1/none")
    monkeypatch.setenv("CAIRN_DB_POOL_SIZE", "3")
    assert make_engine("postgresql+psycopg://u@127.0.0.1:1/none").pool.size() == 3  # type: ignore[attr-defined]
