"""The store against real servers and files: what a user sees when the database is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cairn.cli.main import cli
from cairn.errors import CairnError
from cairn.store.open import current, open_store
from cairn.store.sql import HEAD_REVISION
from tests.pg_server import free_port


def test_an_unreachable_postgres_server_is_one_clear_error() -> None:
    uri = f"postgresql://cairn@127.0.0.1:{free_port()}/cairn"
    with pytest.raises(CairnError, match=r"database error at postgresql\+psycopg://cairn@"
                                         r"127\.0\.0\.1:\d+/cairn: connection failed"):
        open_store(uri)


def test_the_password_never_appears_in_errors() -> None:
    uri = f"postgresql://cairn:s3cret@127.0.0.1:{free_port()}/cairn"
    result = CliRunner().invoke(cli, ["db", "current", uri])
    assert result.exit_code == 1
    assert "s3cret" not in result.output and "***" in result.output


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("hello")
    result = CliRunner().invoke(cli, ["db", "upgrade", str(path)])
    assert result.exit_code == 1
    assert f"database error at sqlite:///{path}: file is not a database" in result.output
    assert path.read_text() == "hello"


def test_looking_at_a_missing_sqlite_file_does_not_create_it(tmp_path: Path) -> None:
    assert current(str(tmp_path / "nope.db")) == (None, HEAD_REVISION)
    assert not (tmp_path / "nope.db").exists()


@pytest.mark.postgres
def test_an_unknown_postgres_database(pg_server: object) -> None:
    uri = pg_server.url("no_such_db")  # type: ignore[attr-defined]
    with pytest.raises(CairnError, match='database "no_such_db" does not exist'):
        open_store(uri)


@pytest.mark.postgres
def test_a_new_postgres_database_is_initialised_once_by_concurrent_openers(
        postgres_url: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def open_and_count(_: int) -> int:
        store = open_store(postgres_url)
        try:
            return len(store.search_experiments())
        finally:
            store.close()

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(open_and_count, range(4))) == [1, 1, 1, 1]
    assert current(postgres_url) == (HEAD_REVISION, HEAD_REVISION)
