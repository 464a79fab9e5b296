"""Where tracking data goes: the metadata store (a URI) and the object store beside it.

The tracking URI, first found wins: `set_tracking_uri()`, the environment variable
``CAIRN_TRACKING_URI``, the config key ``tracking.uri``, the project's
``.cairn/cairn.db`` when the working directory is inside a Cairn project, else
``~/.cairn/cairn.db``. A plain path means a SQLite file.

Artifacts (run files, models) are objects, stored where the tracking URI says, not
where the working directory is, so a model is found again from anywhere with the same
URI: a SQLite file in a project's ``.cairn/`` → that project's cache (so `cairn push`
and `cairn gc` see them). A database no project owns — another SQLite file, or a server
— is shared like a server: the current project's cache (pushed with the project's data,
fetched back by `load_model`), else ``cache/`` next to a SQLite file, else
``~/.cairn/cache``. Materialized models live in ``tmp/models`` beside that cache.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cairn.errors import NotARepositoryError, UserError
from cairn.project.context import DB_NAME, DOT_DIR, ProjectContext
from cairn.store.open import ENV_URI, normalize_uri, sqlite_path

if TYPE_CHECKING:
    from cairn.objects.odb import ObjectDB
    from cairn.store.base import MetadataStore
    from cairn.tracking.buffer import MetricBuffer

DEFAULT_FLUSH_INTERVAL = 1.0  # seconds a logged metric may wait in memory
DEFAULT_FLUSH_ROWS = 1000  # a buffer this full is written at once

_lock = threading.RLock()
_explicit_uri: str | None = None
_backends: dict[tuple[str, str], Backend] = {}


def home_dir() -> Path:
    return Path.home() / ".cairn"


def find_repo(start: Path | None = None) -> ProjectContext | None:
    try:
        return ProjectContext.find(start)
    except NotARepositoryError:
        return None


def set_tracking_uri(uri: str | os.PathLike[str] | None) -> None:
    """Use `uri` from now on in this process; None goes back to the default."""
    global _explicit_uri
    _explicit_uri = None if uri is None or str(uri) == "" else normalize_uri(str(uri))


def explicit_tracking_uri() -> str | None:
    """What `set_tracking_uri` chose in this process, if anything."""
    return _explicit_uri


def get_tracking_uri() -> str:
    if _explicit_uri is not None:
        return _explicit_uri
    repo = find_repo()
    if repo is not None:
        return repo.tracking_uri
    from_env = os.environ.get(ENV_URI)
    return normalize_uri(from_env or str(home_dir() / DB_NAME))


@dataclass
class Backend:
    """One tracking URI opened: its store, its objects, its metric buffer."""

    uri: str
    store: MetadataStore
    odb: ObjectDB
    repo: ProjectContext | None  # the project owning `odb` (its lock, tmp dir, remote), if any
    here: ProjectContext | None = None  # the project the code runs in: where lineage is read
    _buffer: MetricBuffer | None = field(default=None, repr=False)

    @property
    def tmp_dir(self) -> Path:
        return self.repo.tmp_dir if self.repo else self.odb.root.parent / "tmp"

    @property
    def root(self) -> Path | None:
        """The current project's root, where lineage is read from (None outside one)."""
        return self.here.root if self.here else None

    @property
    def buffer(self) -> MetricBuffer:
        with _lock:
            if self._buffer is None:
                from cairn.tracking.buffer import MetricBuffer

                interval, rows = flush_settings(self.repo)
                self._buffer = MetricBuffer(self.store, interval, rows)
            return self._buffer

    @contextlib.contextmanager
    def writing_objects(self) -> Iterator[None]:
        """Hold the project lock while objects are written and recorded, so a concurrent
        `cairn gc` cannot delete them between the two."""
        if self.repo is None or _held_by_us(self.repo.tmp_dir / "lock"):
            yield  # e.g. train.py run by `cairn repro`, which holds the lock meanwhile
            return
        self.odb.root.mkdir(parents=True, exist_ok=True)
        with self.repo.lock():
            yield


def _held_by_us(lock_file: Path) -> bool:
    """Whether this process or one of its ancestors holds the repository lock (the
    holder writes "PID <n> (command)" into the file and empties it on release)."""
    try:
        words = lock_file.read_text().split()
    except OSError:
        return False
    if len(words) < 2 or words[0] != "PID" or not words[1].isdigit():
        return False
    return int(words[1]) in _ancestors()


def _ancestors(limit: int = 64) -> set[int]:
    found, pid = {os.getpid()}, os.getppid()
    while pid > 1 and pid not in found and len(found) < limit:
        found.add(pid)
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:  # "pid (comm) state ppid ..."
                pid = int(f.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break  # no /proc (macOS): the parent alone is known
    return found


def flush_settings(repo: ProjectContext | None) -> tuple[float, int]:
    from cairn.project.context import find_config

    config = repo.config if repo else find_config()
    interval = float(config.get("tracking.flush_interval", DEFAULT_FLUSH_INTERVAL))
    rows = int(config.get("tracking.flush_rows", DEFAULT_FLUSH_ROWS))
    if interval < 0 or rows < 1:
        raise UserError("tracking.flush_interval must be >= 0 seconds and tracking.flush_rows "
                        ">= 1; fix them with `cairn config`")
    return interval, rows


def objects_owner(uri: str, here: ProjectContext | None) -> ProjectContext | None:
    """The project whose cache holds the objects of `uri`: for a SQLite file, the
    project whose ``.cairn/`` holds it; for a database no project owns, `here`."""
    db = sqlite_path(uri)
    if db is None:
        return here
    if here is not None and db.parent == here.dot_dir:
        return here
    if db.parent.name != DOT_DIR or not (db.parent / "config.toml").is_file():
        return here
    owner = ProjectContext(db.parent.parent)
    owner.check_format()
    return owner


def objects_root(uri: str, owner: ProjectContext | None) -> Path:
    if owner is not None:
        return owner.cache_dir
    db = sqlite_path(uri)
    return db.parent / "cache" if db is not None else home_dir() / "cache"


def backend(uri: str | None = None) -> Backend:
    """The backend for `uri` (default: the current tracking URI), opened once per process."""
    uri = normalize_uri(uri) if uri else get_tracking_uri()
    here = find_repo()
    key = (uri, str(here.root) if here else "")
    with _lock:
        found = _backends.get(key)
        if found is None:
            owner = objects_owner(uri, here)
            if owner is not None and sqlite_path(uri) == owner.dot_dir / DB_NAME:
                _ignore_database(owner)
            # An owned database keeps its objects in its project's cache: that
            # project's ObjectDB, so push and gc see what tracking wrote.
            if owner is not None:
                odb = owner.odb
            else:
                from cairn.objects.odb import ObjectDB

                odb = ObjectDB.local(objects_root(uri, None))
            found = Backend(uri, _open_store(uri), odb, owner, here)
            _backends[key] = found
        return found


def _ignore_database(repo: ProjectContext) -> None:
    """The project's database is local state, like the cache: never for `git add`. Listed
    in .git/info/exclude (this clone's own ignore file), so no tracked file changes and
    the run about to start is not made dirty by it."""
    git_root = repo.git_root
    if git_root is None or not (git_root / ".git").is_dir():
        return
    dot_ignore = repo.dot_dir / ".gitignore"
    if dot_ignore.is_file() and DB_NAME in dot_ignore.read_text(errors="replace"):
        return  # a newer `cairn init` ignores it already
    exclude = git_root / ".git" / "info" / "exclude"
    pattern = "/" + (repo.dot_dir / DB_NAME).relative_to(git_root).as_posix() + "*"
    try:
        text = exclude.read_text()
    except FileNotFoundError:
        text = ""
    if pattern not in text.split("\n"):
        from cairn.fsutil import atomic_write

        exclude.parent.mkdir(parents=True, exist_ok=True)
        separator = "\n" if text and not text.endswith("\n") else ""
        atomic_write(exclude, f"{text}{separator}{pattern}\n".encode())


def _open_store(uri: str) -> MetadataStore:
    db = sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    from cairn.store.open import open_store

    return open_store(uri)


def all_backends() -> list[Backend]:
    with _lock:
        return list(_backends.values())


_inherited: list[Backend] = []


def drop_after_fork() -> None:
    """In a forked child: never touch the parent's database connections (not even to
    close them); the child opens its own on first use."""
    with _lock:
        _inherited.extend(_backends.values())  # kept referenced: no close on collection
        _backends.clear()


def forget_backends() -> None:
    """Flush and drop every opened backend (tests; a forked child)."""
    with _lock:
        backends = list(_backends.values())
        _backends.clear()
    for b in backends:
        if b._buffer is not None:
            b._buffer.close()
        b.store.close()
