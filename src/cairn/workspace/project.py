"""A repository opened for work: its paths, object database, stat cache and settings."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cairn.errors import ConfigError
from cairn.objects.links import parse_link_types
from cairn.objects.odb import ObjectDB
from cairn.objects.state import StatCache
from cairn.repo import Repo
from cairn.scm.git import Git

if TYPE_CHECKING:  # commands that never touch a remote need not import the remotes
    from cairn.remotes.index import RemoteIndex

DEFAULT_JOBS = 8


@dataclass
class Project:
    repo: Repo
    odb: ObjectDB
    state: StatCache

    @property
    def root(self) -> Path:
        return self.repo.root

    @property
    def git(self) -> Git | None:
        git_root = self.repo.git_root
        return Git(git_root) if git_root is not None else None

    @property
    def link_types(self) -> tuple[str, ...]:
        try:
            return parse_link_types(self.repo.config.get("cache.type"))
        except ValueError as e:
            raise ConfigError(f"cache.type: {e}") from None

    def remote_index(self) -> RemoteIndex:
        """What this clone knows its remotes hold (see cairn.remotes.index)."""
        from cairn.remotes.index import RemoteIndex

        return RemoteIndex(self.repo.tmp_dir / "remotes.db")

    @property
    def jobs(self) -> int:
        return int(self.repo.config.get("core.jobs", DEFAULT_JOBS))


@contextmanager
def open_project(start: Path | None = None) -> Iterator[Project]:
    repo = Repo.find(start)
    state = StatCache(repo.tmp_dir / "state.db")
    try:
        yield Project(repo, ObjectDB(repo.cache_dir), state)
    finally:
        state.close()
