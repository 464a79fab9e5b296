"""Schema migrations: models and migrations agree (alembic check), upgrades keep data."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from cairn.cli.main import cli
from cairn.errors import UserError
from cairn.store.open import current, open_store, sqlalchemy_url, upgrade
from cairn.store.sql import HEAD_REVISION, migrate
from cairn.store.sql.engine import make_engine


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with nothing in it yet (a file that does not exist, for SQLite)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'new' / 'cairn.db'}"
    return str(request.getfixturevalue("postgres_url"))


def at_revision(uri: str, revision: str) -> None:
    engine = make_engine(sqlalchemy_url(uri))
    try:
        migrate.upgrade(engine, revision)
    finally:
        engine.dispose()


def sql(uri: str, statement: str) -> list[tuple[object, ...]]:
    engine = make_engine(sqlalchemy_url(uri))
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement))
            return [tuple(row) for row in result] if result.returns_rows else []
    finally:
        engine.dispose()


def test_head_constant_matches_the_migrations() -> None:
    assert migrate.revisions() == ["0001", "0002", "0003", "0004", "0005"]
    assert migrate.head() == HEAD_REVISION


def test_migrations_match_the_models(empty_uri: str) -> None:
    """`alembic check`: upgrading an empty database gives exactly tables.py."""
    open_store(empty_uri).close()
    engine = make_engine(sqlalchemy_url(empty_uri))
    try:
        assert migrate.differences(engine) == []
    finally:
        engine.dispose()


def test_a_new_database_is_created_at_head(empty_uri: str) -> None:
    assert current(empty_uri) == (None, HEAD_REVISION)
    store = open_store(empty_uri)
    try:
        assert store.get_experiment("0").name == "Default"
    finally:
        store.close()
    assert current(empty_uri) == (HEAD_REVISION, HEAD_REVISION)


def seed_revision_0001(uri: str) -> None:
    at_revision(uri, "0001")
    for statement in (
        "INSERT INTO experiments VALUES (1, 'fraud', '', 'active', 5, 5)",
        "INSERT INTO runs VALUES ('a1', 1, 'old-run', 'ana', 'FINISHED', 10, 20, 'active', "
        "'runs:/a1')",
        "INSERT INTO params VALUES ('a1', 'lr', '0.1')",
        "INSERT INTO latest_metrics VALUES ('a1', 'f1', 0.9, false, 0, 11)",
        "INSERT INTO registered_models VALUES (1, 'fraud', '', 30, 30, 2)",
        "INSERT INTO model_versions VALUES (1, 1, 30, 30, 'Production', '', 'ana', "
        "'runs:/a1/model', 'a1', 'READY', 'd1', '')",
        "INSERT INTO model_versions VALUES (1, 2, 40, 40, 'None', '', 'bo', '/m', NULL, "
        "'READY', 'd2', '')",
    ):
        sql(uri, statement)


def test_sqlite_at_an_older_revision_upgrades_on_open_with_its_data(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'old.db'}"
    seed_revision_0001(uri)
    store = open_store(uri)
    try:
        run = store.get_run("a1")
        assert (run.info.run_name, run.data.params, run.data.metrics) == (
            "old-run", {"lr": "0.1"}, {"f1": 0.9})
        assert store.get_latest_versions("fraud", ["Production"])[0].digest == "d1"
        # 0002 backfilled one "register" entry per existing version
        log = store.get_audit_log("fraud")
        assert [(e.version, e.action, e.user_id, e.timestamp) for e in log] == [
            (1, "register", "ana", 30), (2, "register", "bo", 40)]
        assert store.create_model_version("fraud", "/m3", "d3").version == 3
    finally:
        store.close()
    assert current(uri)[0] == HEAD_REVISION


@pytest.mark.postgres
def test_postgres_at_an_older_revision_is_refused_until_db_upgrade(postgres_url: str) -> None:
    seed_revision_0001(postgres_url)
    with pytest.raises(UserError, match=rf"at schema revision 0001, and this Cairn needs "
                                        rf"{HEAD_REVISION}: run `cairn db upgrade "):
        open_store(postgres_url)
    assert current(postgres_url) == ("0001", HEAD_REVISION)
    result = CliRunner().invoke(cli, ["db", "upgrade", postgres_url])
    assert result.exit_code == 0, result.output
    assert f"upgraded from revision 0001 to {HEAD_REVISION}" in result.output
    store = open_store(postgres_url)
    try:
        assert store.get_run("a1").data.params == {"lr": "0.1"}
        assert [e.action for e in store.get_audit_log("fraud")] == ["register", "register"]
        assert store.create_model_version("fraud", "/m3", "d3").version == 3
    finally:
        store.close()


def test_db_upgrade_and_current_commands(empty_uri: str) -> None:
    runner = CliRunner()
    before = runner.invoke(cli, ["db", "current", empty_uri])
    assert before.exit_code == 0 and "revision (empty)" in before.output
    assert "run `cairn db upgrade" in before.output
    first = runner.invoke(cli, ["db", "upgrade", empty_uri])
    assert f"upgraded from revision (empty) to {HEAD_REVISION}" in first.output
    again = runner.invoke(cli, ["db", "upgrade", empty_uri])
    assert f"already at revision {HEAD_REVISION}" in again.output
    after = runner.invoke(cli, ["db", "current", "--json", empty_uri])
    assert '"up_to_date": true' in after.output
    assert upgrade(empty_uri) == (HEAD_REVISION, HEAD_REVISION)


def test_a_database_from_a_newer_cairn_is_refused(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'future.db'}"
    open_store(uri).close()
    sql(uri, "UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(UserError, match="revision 0099, which this Cairn does not know"):
        open_store(uri)
    result = CliRunner().invoke(cli, ["db", "upgrade", uri])
    assert result.exit_code == 2
    assert "upgrade Cairn to use it" in result.output


@pytest.mark.parametrize(("uri", "message"), [
    ("mysql://x@y/z", "unsupported scheme 'mysql'"),
    ("postgresql+psycopg2://x@y/z", "through psycopg 3"),
    ("", "empty tracking URI"),
])
def test_uris_cairn_cannot_open(uri: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        open_store(uri)


@pytest.mark.parametrize("uri", ["http://127.0.0.1:5000", "https://cairn.example.com/"])
def test_a_server_uri_opens_the_rest_client_and_has_no_database_url(uri: str) -> None:
    from cairn.store.rest import RestStore

    opened = open_store(uri)
    assert isinstance(opened, RestStore) and opened.url == uri.rstrip("/")
    opened.close()
    with pytest.raises(UserError, match="names a Cairn server"):
        sqlalchemy_url(uri)  # `cairn db upgrade` runs against the server's own database


def test_uri_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert sqlalchemy_url("sqlite:///rel/c.db") == f"sqlite:///{tmp_path / 'rel' / 'c.db'}"
    assert sqlalchemy_url(str(tmp_path / "x.db")) == f"sqlite:///{tmp_path / 'x.db'}"
    assert sqlalchemy_url("postgresql://u:p@h:5/db") == "postgresql+psycopg://u:p@h:5/db"
    assert sqlalchemy_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(UserError, match="is a directory"):
        sqlalchemy_url(str(tmp_path))
