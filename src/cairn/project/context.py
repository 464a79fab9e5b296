"""The one project context: a Cairn project found on disk and opened for work.

A project is a directory holding ``.cairn/``; it is usually also a git work tree.
`ProjectContext` is what every layer below the commands is handed: its root and
configuration, the object database (the cache), the stat cache, git, the metadata store
and the repository mutex. Each part opens on first use, so a command that only reads the
configuration opens no database. Nothing below `cairn.commands` finds the project from
the working directory; the command layer opens one context and passes it down.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from cairn.config import Config
from cairn.errors import ConfigError, NotARepositoryError, PathError
from cairn.paths import Root
from cairn.project.mutex import DEFAULT_TIMEOUT, repo_lock
from cairn.scm.git import Git

if TYPE_CHECKING:  # each part is imported when it is opened: `cairn dag` needs none
    from cairn.objects.odb import ObjectDB
    from cairn.objects.state import StatCache
    from cairn.remotes.index import RemoteIndex
    from cairn.store.base import MetadataStore

DOT_DIR = ".cairn"
DB_NAME = "cairn.db"  # the embedded tracking database, in DOT_DIR
USER_PATH_ADVICE = "Cairn never tracks or writes there"
# The repository layout version (docs/formats.md). Cairn refuses one it does not know.
FORMAT_VERSION = 1
DEFAULT_JOBS = 8


def find_root(start: Path | None = None) -> Path:
    here = Path(start or os.getcwd()).absolute()
    for candidate in (here, *here.parents):
        if (candidate / DOT_DIR).is_dir():
            return candidate
    raise NotARepositoryError(
        f"{here} is not inside a Cairn repository; run `cairn init` at the project root"
    )


def find_git_root(start: Path) -> Path | None:
    for candidate in (start, *start.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


class ProjectContext:
    """One project: `root` and everything opened from it (see the module docstring).

    `tracking_uri`: the metadata store to use instead of the project's own (the command
    layer passes what `cairn.set_tracking_uri` or the environment chose).
    """

    def __init__(self, root: Path, tracking_uri: str | None = None) -> None:
        self.root = root
        self._tracking_uri = tracking_uri

    @classmethod
    def find(cls, start: Path | None = None, tracking_uri: str | None = None
             ) -> ProjectContext:
        project = cls(find_root(start), tracking_uri)
        project.check_format()
        return project

    def __repr__(self) -> str:
        return f"ProjectContext({str(self.root)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ProjectContext) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    # -- where things are -----------------------------------------------------------

    @property
    def dot_dir(self) -> Path:
        return self.root / DOT_DIR

    @property
    def tmp_dir(self) -> Path:
        return self.dot_dir / "tmp"

    @property
    def config(self) -> Config:
        return Config(self.dot_dir)

    @property
    def cache_dir(self) -> Path:
        configured = self.config.get("cache.dir")
        if not configured:
            return self.dot_dir / "cache"
        path = Path(os.path.expanduser(configured))
        return path if path.is_absolute() else (self.dot_dir / path).absolute()

    @property
    def git_root(self) -> Path | None:
        return find_git_root(self.root)

    @property
    def git(self) -> Git | None:
        git_root = self.git_root
        return Git(git_root) if git_root is not None else None

    @functools.cached_property
    def paths(self) -> Root:
        """The workspace on disk, for checking paths inside it (cairn.paths)."""
        return Root(self.root, self.cache_dir / "objects")

    def check_format(self) -> None:
        version = self.config.get("format")
        if version is None:
            raise NotARepositoryError(
                f"{self.dot_dir / 'config.toml'} has no `format` key; "
                "it was not made by `cairn init` — run `cairn init` to repair it"
            )
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise NotARepositoryError(
                f"{self.root} uses repository format {version}, but this Cairn understands "
                f"up to {FORMAT_VERSION}; upgrade Cairn"
            )

    def relpath(self, path: str | os.PathLike[str], cwd: Path | None = None) -> str:
        """A user's path as a clean posix path relative to the root, or a PathError."""
        given = Path(path)
        absolute = Path(os.path.normpath((cwd or Path.cwd()) / given))
        real_root = self.root.resolve()
        try:
            rel = absolute.relative_to(self.root)
        except ValueError:
            try:
                rel = absolute.relative_to(real_root)
            except ValueError:
                raise PathError(
                    f"{path}: outside the repository {self.root}; "
                    "move it inside or run cairn from its repository",
                    str(path),
                ) from None
        if not rel.parts:
            raise PathError(f"{path}: is the repository root itself; name a file or directory")
        self.paths.check(rel.as_posix(), str(path), what="", advice=USER_PATH_ADVICE)
        return rel.as_posix()

    # -- settings -----------------------------------------------------------------------

    @property
    def link_types(self) -> tuple[str, ...]:
        from cairn.objects.links import parse_link_types

        try:
            return parse_link_types(self.config.get("cache.type"))
        except ValueError as e:
            raise ConfigError(f"cache.type: {e}") from None

    @property
    def jobs(self) -> int:
        return int(self.config.get("core.jobs", DEFAULT_JOBS))

    # -- what is opened -----------------------------------------------------------------

    @functools.cached_property
    def odb(self) -> ObjectDB:
        """The cache: this project's object database."""
        from cairn.objects.odb import ObjectDB

        return ObjectDB.local(self.cache_dir)

    @functools.cached_property
    def state(self) -> StatCache:
        """The stat cache: digests of workspace files known not to have changed."""
        from cairn.objects.state import StatCache

        return StatCache(self.tmp_dir / "state.db")

    def trusting_no_stat_cache(self) -> ProjectContext:
        """This project with a stat cache that knows nothing: every file is re-hashed."""
        from cairn.objects.state import NoStatCache

        blind = ProjectContext(self.root, self._tracking_uri)
        blind.__dict__.update(self.__dict__)
        blind.__dict__["state"] = NoStatCache()
        return blind

    def remote_index(self) -> RemoteIndex:
        """What this clone knows its remotes hold (see cairn.remotes.index)."""
        from cairn.remotes.index import RemoteIndex

        return RemoteIndex(self.tmp_dir / "remotes.db")

    @property
    def tracking_uri(self) -> str:
        """The metadata store's URI: the one given, else `CAIRN_TRACKING_URI`, else the
        config's `tracking.uri`, else the project's own ``.cairn/cairn.db``."""
        from cairn.store.open import ENV_URI, normalize_uri

        if self._tracking_uri:
            return self._tracking_uri
        from_env = os.environ.get(ENV_URI)
        configured = from_env or self.config.get("tracking.uri")
        return normalize_uri(str(configured) if configured else str(self.dot_dir / DB_NAME))

    @functools.cached_property
    def store(self) -> MetadataStore:
        """The metadata store (runs, models, stages), opened on first use."""
        from cairn.store.open import open_store

        return open_store(self.tracking_uri)

    def has_store(self) -> bool:
        """Whether the metadata store exists, without creating an empty one."""
        from cairn.store.open import sqlite_path

        db = sqlite_path(self.tracking_uri)
        return db is None or db.exists()

    @contextmanager
    def lock(self) -> Iterator[None]:
        """The repository mutex: one writer of the cache and workspace at a time."""
        timeout = float(self.config.get("core.lock_timeout", DEFAULT_TIMEOUT))
        with repo_lock(self.tmp_dir / "lock", timeout):
            yield

    def close(self) -> None:
        """Close what was opened (the stat cache writes what it still holds)."""
        for part in ("state", "store"):
            opened = self.__dict__.pop(part, None)
            if opened is not None:
                opened.close()


@contextmanager
def open_project(start: Path | None = None, tracking_uri: str | None = None
                 ) -> Iterator[ProjectContext]:
    project = ProjectContext.find(start, tracking_uri)
    try:
        yield project
    finally:
        project.close()


def find_config(level: str | None = None) -> Config:
    """The configuration seen from here: the repository's, or outside any repository only
    the global one (enough for reading, or for writing with --global)."""
    try:
        return ProjectContext.find().config
    except NotARepositoryError:
        if level not in ("global", None):
            raise
        return Config(None)
