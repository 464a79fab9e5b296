"""Where a Cairn repository is, and the paths inside it.

A repository is a directory holding ``.cairn/``; it is usually also a git work tree.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cairn.config import Config
from cairn.errors import NotARepositoryError, PathError
from cairn.lock import DEFAULT_TIMEOUT, repo_lock
from cairn.paths import Root

DOT_DIR = ".cairn"
USER_PATH_ADVICE = "Cairn never tracks or writes there"
# The repository layout version (docs/formats.md). Cairn refuses one it does not know.
FORMAT_VERSION = 1


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


@dataclass(frozen=True)
class Repo:
    root: Path

    @classmethod
    def find(cls, start: Path | None = None) -> Repo:
        repo = cls(find_root(start))
        repo.check_format()
        return repo

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

    @contextmanager
    def lock(self) -> Iterator[None]:
        timeout = float(self.config.get("core.lock_timeout", DEFAULT_TIMEOUT))
        with repo_lock(self.tmp_dir / "lock", timeout):
            yield

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

    @functools.cached_property
    def paths(self) -> Root:
        """The workspace on disk, for checking paths inside it (cairn.paths)."""
        return Root(self.root, self.cache_dir / "objects")


def find_config(level: str | None = None) -> Config:
    """The configuration seen from here: the repository's, or outside any repository only
    the global one (enough for reading, or for writing with --global)."""
    try:
        return Repo.find().config
    except NotARepositoryError:
        if level not in ("global", None):
            raise
        return Config(None)
