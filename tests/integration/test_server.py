"""`cairn server` itself: it starts on a free local port, documents its API, answers
bad input with 4xx JSON, and refuses what would be unsafe or silently wrong."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.conftest import CliRepo
from tests.server_process import running


def test_the_server_serves_its_openapi_document_and_health(tmp_path: Path) -> None:
    with running(f"sqlite:///{tmp_path / 'team.db'}", tmp_path) as server:
        assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}
        document = httpx.get(f"{server.url}/api/v1/openapi.json").json()
        assert document["info"]["title"] == "Cairn"
        missing = httpx.get(f"{server.url}/api/v1/no-such-thing")
        assert missing.status_code == 404
    assert (tmp_path / "team.db").exists() and server.artifacts.is_dir()
    assert "Cairn server at http://127.0.0.1:" in server.output()


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])
def test_without_auth_only_this_machine_may_connect(repo: CliRepo, host: str) -> None:
    refused = repo.cairn("server", "--host", host, ok=False)
    assert refused.exit_code == 2
    assert f"refusing to serve on {host} without authentication" in refused.stderr


@pytest.mark.postgres
def test_an_old_postgresql_schema_is_refused_with_the_upgrade_command(
        repo: CliRepo, postgres_url: str) -> None:
    from sqlalchemy import create_engine

    from cairn.store.open import sqlalchemy_url
    from cairn.store.sql import migrate

    engine = create_engine(sqlalchemy_url(postgres_url))
    try:
        migrate.upgrade(engine, "0002")
    finally:
        engine.dispose()
    refused = repo.cairn("server", "--backend-store-uri", postgres_url, "--port", "1", ok=False)
    assert refused.exit_code == 2
    assert "cairn db upgrade" in refused.stderr and "0002" in refused.stderr
