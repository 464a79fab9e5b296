"""Shared fixtures: an isolated environment, temp git repositories, a CLI runner."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner, Result

from cairn.cli.main import cli


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory,
                 monkeypatch: pytest.MonkeyPatch) -> None:
    """No CAIRN_* from the developer's shell, no global config, a fixed git identity."""
    for name in list(os.environ):
        if name.startswith("CAIRN_"):
            monkeypatch.delenv(name)
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Cairn Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@cairn.invalid")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


@dataclass
class CliRepo:
    """A temporary git repository with Cairn initialised, and ways to drive it."""

    root: Path

    def cairn(self, *args: str, ok: bool = True) -> Result:
        result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
        if ok and result.exit_code != 0:
            raise AssertionError(f"cairn {' '.join(args)} exited {result.exit_code}:\n"
                                 f"{result.output}{result.stderr}")
        return result

    def cairn_process(self, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        """The real entry point in a child process (hooks, signals, concurrency)."""
        return subprocess.run([sys.executable, "-m", "cairn", *args], cwd=self.root,
                              capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]

    def git(self, *args: str) -> str:
        return git(self.root, *args)

    def write(self, rel: str, data: bytes | str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        path.write_bytes(data)
        return path


def commit(repo: CliRepo, message: str, tag: str | None = None) -> None:
    """Commit everything in the work tree, optionally tagging it."""
    repo.git("add", "-A")
    repo.git("commit", "-qm", message)
    if tag:
        repo.git("tag", tag)


def clone(repo: CliRepo, dest: Path, monkeypatch: pytest.MonkeyPatch) -> CliRepo:
    """A git clone of `repo` at `dest`, made the working directory."""
    git(dest.parent, "clone", "-q", str(repo.root), dest.name)
    monkeypatch.chdir(dest)
    return CliRepo(dest)


def make_repo(path: Path, *cairn_init_args: str) -> CliRepo:
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    repo = CliRepo(path)
    old = Path.cwd()
    os.chdir(path)
    try:
        repo.cairn("init", *cairn_init_args)
    finally:
        os.chdir(old)
    return repo


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRepo]:
    """A git + Cairn repository (hooks installed) as the working directory."""
    r = make_repo(tmp_path / "repo")
    monkeypatch.chdir(r.root)
    yield r


@pytest.fixture
def fresh_tracking() -> Iterator[None]:
    """No tracking state (URI, active run, open stores) carried between tests that run
    the CLI in this process. Modules use it with `pytest.mark.usefixtures`."""
    from cairn.tracking import fluent

    fluent._reset_for_tests()
    yield
    fluent._reset_for_tests()


@pytest.fixture
def scratch_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The temp dir for this test (where `cairn reproduce` makes its scratch worktrees),
    so that leftovers can be seen."""
    import tempfile

    place = tmp_path / "scratch"
    place.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(place))
    return place


# ----- metadata store fixtures (owner: helper STORE) -----------------------------------
# `store_uri` / `store` run one conformance suite on SQLite and on PostgreSQL (STYLE:
# one interface, two stores). PostgreSQL is a throwaway server (tests/pg_server.py).

if TYPE_CHECKING:
    from cairn.store.base import MetadataStore
    from tests.pg_server import PgServer

@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    from tests.pg_server import PgServer, find_bin

    if find_bin("initdb") is None:
        pytest.skip("PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin or "
                    "PATH); CI installs Debian's postgresql")
    server = PgServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(pg_server: PgServer) -> str:
    """postgresql://… of a new, empty database on the session's server."""
    return pg_server.url(pg_server.create_database())


@pytest.fixture(scope="session")
def pg_store_template(pg_server: PgServer) -> str:
    """A database migrated to head once, copied for each test (CREATE DATABASE … TEMPLATE)."""
    from cairn.store.open import open_store

    name = pg_server.create_database()
    open_store(pg_server.url(name)).close()
    return name


STORES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "rest-sqlite",
          pytest.param("rest-postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=STORES)
def store_uri(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URI of a new metadata store: SQLite, PostgreSQL, and a Cairn server (RestStore)
    on each. Tests marked `not_on_rest` (what only a database can show) skip the server."""
    kind = str(request.param)
    if kind.endswith("sqlite"):
        database = f"sqlite:///{tmp_path / 'cairn.db'}"
    else:
        server = request.getfixturevalue("pg_server")
        template = request.getfixturevalue("pg_store_template")
        database = str(server.url(server.create_database(template)))
    if not kind.startswith("rest"):
        yield database
        return
    from tests.rest_server import serving

    with serving(database, tmp_path / "server-artifacts") as url:
        yield url


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start building the peers' virtualenvs (dvc, mlflow 3.x and 2.x) side by side when
    the selected tests may run them and they are missing (a fresh clone: ~3 minutes one
    after the other), while the first tests run."""
    import os

    if os.environ.get("CAIRN_MLFLOW_PYTHON") or not any(
            part in ("compat", "integration") for item in session.items
            for part in item.path.parts[-3:-1]):
        return
    from benchmarks.peers import prebuild

    prebuild()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `not_on_rest` run on the databases only (deselected for the server)."""
    kept, dropped = [], []
    for item in items:
        param = getattr(getattr(item, "callspec", None), "params", {}).get("store_uri")
        on_rest = isinstance(param, str) and param.startswith("rest")
        (dropped if on_rest and item.get_closest_marker("not_on_rest") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture
def store(store_uri: str) -> Iterator[MetadataStore]:
    """An open MetadataStore at `store_uri` (SqlStore on SQLite or PostgreSQL, or
    RestStore on a server backed by either)."""
    from cairn.store.open import open_store

    opened = open_store(store_uri)
    try:
        yield opened
    finally:
        opened.close()
