"""Open the metadata store a tracking URI names, at the schema revision this Cairn needs.

    sqlite:///relative/path.db, sqlite:////absolute/path.db, or a bare path → SQLite
    postgresql://user:pw@host/db, postgresql+psycopg://… → PostgreSQL (psycopg 3)
    http(s)://… → a Cairn server (`cairn.store.rest.RestStore` over its REST API)

A new database is created at the newest schema. An existing SQLite file at an older
revision is upgraded on open (one user, one file); a PostgreSQL database at an older
revision is refused until someone runs `cairn db upgrade URI`, because teams share it
and upgrade deliberately. SQLAlchemy and Alembic are imported only when a store opens.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from cairn.errors import UserError

if TYPE_CHECKING:  # tracking URIs are resolved before any store is opened: stay light
    from sqlalchemy import Engine

    from cairn.store.base import MetadataStore

def normalize_uri(uri: str) -> str:
    """A URI the store understands: plain paths and ``file:`` become ``sqlite:///abs``."""
    if uri.startswith(("sqlite://", "postgresql://", "postgresql+", "postgres://",
                       "http://", "https://")):
        return uri
    if uri.startswith("file://"):
        uri = uri[len("file://"):]
    elif "://" in uri:
        raise UserError(f"tracking URI {uri!r} has an unknown scheme; use a path, "
                        "sqlite:///path/to/cairn.db or postgresql://user@host/db")
    path = Path(os.path.expanduser(uri)).absolute()
    return f"sqlite:///{path}"


def sqlite_path(uri: str) -> Path | None:
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


ENV_URI = "CAIRN_TRACKING_URI"  # the environment variable naming the tracking URI
SUPPORTED = ("sqlite:///PATH, a file path, postgresql://USER@HOST/DB, or http(s)://HOST:PORT "
             "(a Cairn server)")


def open_store(uri: str) -> MetadataStore:
    """The store at `uri`, its schema checked (and created or upgraded where allowed)."""
    if uri.lower().startswith(("http://", "https://")):
        from cairn.store.rest import RestStore

        return RestStore(uri)
    from cairn.store.sql.store import SqlStore

    engine = _engine(uri)
    try:
        _ensure_schema(engine, uri)
    except BaseException:
        engine.dispose()
        raise
    return SqlStore(engine)


def upgrade(uri: str) -> tuple[str | None, str | None]:
    """`cairn db upgrade`: migrate the database to the newest revision; (before, after)."""
    from cairn.store.sql import migrate

    engine = _engine(uri)
    try:
        _refuse_unknown(migrate.read_revision(engine), uri)
        return migrate.upgrade(engine)
    finally:
        engine.dispose()


def current(uri: str) -> tuple[str | None, str]:
    """`cairn db current`: (the database's revision or None, the newest this Cairn knows)."""
    from cairn.store.sql import migrate

    url = sqlalchemy_url(uri)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None, migrate.head()  # looking must not create the file
    engine = _engine(uri)
    try:
        return migrate.read_revision(engine), migrate.head()
    finally:
        engine.dispose()


def sqlalchemy_url(uri: str) -> str:
    """The SQLAlchemy URL for a tracking URI; UserError for anything Cairn cannot open."""
    uri = str(uri).strip()
    if not uri:
        raise UserError(f"empty tracking URI: use {SUPPORTED}")
    scheme, sep, rest = uri.partition("://")
    scheme = scheme.lower() if sep else ""
    if scheme in ("http", "https"):
        raise UserError(f"tracking URI {uri} names a Cairn server, which has no database "
                        "URL of its own here: `cairn db` commands run on the server machine, "
                        "against its --backend-store-uri")
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return f"postgresql+psycopg://{rest}"
    if scheme.startswith("postgresql+"):
        raise UserError(f"tracking URI {uri}: Cairn talks to PostgreSQL through psycopg 3; "
                        "write postgresql://… or postgresql+psycopg://…")
    if scheme == "sqlite":
        path = rest[1:] if rest.startswith("/") else rest
        if path in ("", ":memory:"):
            return "sqlite://"
        return _sqlite_file(Path(path))
    if scheme == "file":
        return _sqlite_file(Path(rest))
    if sep:
        raise UserError(f"tracking URI {uri}: unsupported scheme '{scheme}'; use {SUPPORTED}")
    return _sqlite_file(Path(uri))


def _sqlite_file(path: Path) -> str:
    path = path.expanduser().absolute()
    if path.is_dir():
        raise UserError(f"tracking URI {path} is a directory; name a database file in it, "
                        f"e.g. {path / 'cairn.db'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the directory for database {path}: "
                        f"{e.strerror or e}") from None
    return f"sqlite:///{path}"


def _engine(uri: str) -> Engine:
    from cairn.store.sql.engine import make_engine

    url = sqlalchemy_url(uri)
    try:
        return make_engine(url)
    except ModuleNotFoundError as e:
        raise UserError(f"tracking URI {uri} needs the Python package {e.name!r}: "
                        "pip install 'cairn[postgres]'") from None


def _ensure_schema(engine: Engine, uri: str) -> None:
    from cairn.store.sql import HEAD_REVISION, migrate

    revision = migrate.read_revision(engine)
    if revision == HEAD_REVISION:
        return
    _refuse_unknown(revision, uri)
    if revision is not None and engine.dialect.name != "sqlite":
        raise UserError(f"database {_safe(engine)} is at schema revision {revision}, and this "
                        f"Cairn needs {HEAD_REVISION}: run `cairn db upgrade {uri}` (back it "
                        "up first; every client of this database must then be this version or "
                        "newer)")
    migrate.upgrade(engine)


def _refuse_unknown(revision: str | None, uri: str) -> None:
    from cairn.store.sql import migrate

    if revision is not None and revision not in migrate.revisions():
        raise UserError(f"database {uri} is at schema revision {revision}, which this Cairn "
                        "does not know: it was upgraded by a newer Cairn; upgrade Cairn to use "
                        "it")


def _safe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)
