"""The files of a Cairn project as of a git revision, or as they are in its workspace.

A revision is read straight from git objects through one long-lived `git cat-file
--batch` for the whole command: nothing is checked out. `cairn get` finds artifacts
this way, and `cairn.pipeline.compare` reads pipelines, params, metrics and plots.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from cairn.errors import UserError
from cairn.scm.git import Git

if TYPE_CHECKING:
    from cairn.project.lockfile import LockFile

WORKSPACE = "workspace"


class BlobReader:
    """One long-lived `git cat-file --batch`: every blob of a command through one process."""

    def __init__(self, git: Git) -> None:
        self.git = git
        self._proc: subprocess.Popen[bytes] | None = None

    def read(self, spec: str) -> bytes | None:
        """The blob named `spec` (``sha:path``), or None if there is none (or a tree)."""
        found = self._request(spec)
        return found[2] if found is not None and found[1] == b"blob" else None

    def resolve(self, rev: str) -> str:
        """The commit `rev` names (as `git rev-parse`, without a process of its own)."""
        found = None if "\n" in rev else self._request(f"{rev}^{{commit}}")
        if found is None:
            raise UserError(f"{rev!r} is not a git revision here; see `git log` or `git tag`")
        return found[0]

    def _request(self, spec: str) -> tuple[str, bytes, bytes] | None:
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(os.fsencode(spec) + b"\n")
        proc.stdin.flush()
        header = proc.stdout.readline().split()
        if len(header) != 3:  # "<spec> missing" / "ambiguous"
            return None
        data = proc.stdout.read(int(header[2]))
        proc.stdout.read(1)  # the newline after each object
        return header[0].decode(), header[1], data

    def _start(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            self._proc = subprocess.Popen(["git", "cat-file", "--batch"], cwd=self.git.root,
                                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.DEVNULL)
        return self._proc

    def close(self) -> None:
        if self._proc is not None:
            assert self._proc.stdin is not None and self._proc.stdout is not None
            self._proc.stdin.close()
            self._proc.wait()
            self._proc.stdout.close()
            self._proc = None


class Snapshot:
    """The files of a Cairn project as of one revision; paths relative to the project."""

    label: str  # for people: the revision as the user wrote it, or "workspace"
    root: Path  # the project's directory (for a revision: where it would be checked out)

    def listing(self) -> list[str]:
        raise NotImplementedError

    def read(self, paths: Iterable[str]) -> dict[str, bytes]:
        """The contents of those `paths` that exist here."""
        raise NotImplementedError

    def locks(self) -> list[LockFile]:
        """Every cairn.lock here, parsed (a FormatError names a malformed one's line)."""
        from cairn.project.lockfile import is_lock_path, loads

        found = self.read(p for p in self.listing() if is_lock_path(p))
        return [loads(data, path) for path, data in found.items()]


class GitSnapshot(Snapshot):
    def __init__(self, git: Git, reader: BlobReader, rev: str, root: Path,
                 label: str | None = None) -> None:
        self.git, self.reader, self.root = git, reader, root
        self.sha = reader.resolve(rev)
        self.label = label or rev
        rel = root.resolve().relative_to(git.root.resolve()).as_posix()
        self.prefix = "" if rel == "." else rel + "/"
        self._listing: list[str] | None = None

    def listing(self) -> list[str]:
        if self._listing is None:
            out = self.git.run("ls-tree", "-r", "-z", "--name-only", self.sha, "--",
                               self.prefix or ".")
            self._listing = [p.removeprefix(self.prefix) for p in map(os.fsdecode,
                                                                        out.split(b"\0"))
                             if p.startswith(self.prefix) and p]
        return self._listing

    def read(self, paths: Iterable[str]) -> dict[str, bytes]:
        found = {}
        for path in paths:
            data = self.reader.read(f"{self.sha}:{self.prefix}{path}")
            if data is not None:
                found[path] = data
        return found


class WorkspaceSnapshot(Snapshot):
    """The project's files as they are on disk (git-ignored data directories not listed)."""

    label = WORKSPACE

    def __init__(self, root: Path, git: Git | None) -> None:
        self.root, self.git = root, git
        self._listing: list[str] | None = None

    def listing(self) -> list[str]:
        if self._listing is None:
            self._listing = self._list()
        return self._listing

    def _list(self) -> list[str]:
        if self.git is not None:
            out = self.git.run("ls-files", "-co", "--exclude-standard", "-z", "--full-name",
                               "--", str(self.root))
            prefix = self.root.resolve().relative_to(self.git.root.resolve()).as_posix()
            prefix = "" if prefix == "." else prefix + "/"
            return [p.removeprefix(prefix) for p in map(os.fsdecode, out.split(b"\0")) if p]
        from cairn.project.pointer import SKIP_DIRS

        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            found += [f if rel == "." else f"{rel}/{f}" for f in filenames]
        return found

    def read(self, paths: Iterable[str]) -> dict[str, bytes]:
        """As Snapshot.read; a path that leaves the workspace (through a symlink too)
        is a PathError, not read."""
        from cairn.project.context import ProjectContext

        inside = ProjectContext(self.root).paths
        found = {}
        for path in paths:
            target = inside.check(path, self.label, "file")
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
                found[path] = target.read_bytes()
        return found
