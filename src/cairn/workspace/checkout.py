"""`cairn checkout`: make the workspace match the pointer files and the cached outs of
every cairn.lock (`cache: false` outs are git's, never touched here).

Nothing is lost: a workspace file whose bytes are not in the cache is a conflict
unless --force. Bytes copied out of the cache are hashed as they are copied; an object
that is linked (reflink, hardlink, symlink) is hashed once, after which the stat cache
vouches for the read-only file — `verify` re-hashes everything instead. A corrupt
object is quarantined, never put in the workspace. Every path was checked by
`select_tracked` (cairn.paths) before anything is written.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cairn.errors import (
    ConflictError,
    FormatError,
    IntegrityError,
    NotFoundError,
    ObjectNotFound,
    PathError,
)
from cairn.objects.hashing import hash_file
from cairn.objects.links import link, write_copy
from cairn.objects.odb import SMALL_FILE
from cairn.objects.tree import Progress, walk_tree
from cairn.project.context import ProjectContext
from cairn.project.pointer import PointerFile
from cairn.project.tracked import TrackedPath
from cairn.workspace.status import file_digest, scan_workspace_dir, select_tracked


@dataclass
class CheckoutResult:
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # paths whose object is not cached
    conflicts: list[str] = field(default_factory=list)
    corrupt: list[str] = field(default_factory=list)

    def raise_for_problems(self) -> None:
        if self.corrupt:
            raise IntegrityError(
                f"refused {len(self.corrupt)} corrupt cache object(s) for {self.corrupt[0]}"
                f"{' …' if len(self.corrupt) > 1 else ''}; they were quarantined — "
                "run `cairn pull` to fetch good copies")
        if self.conflicts:
            raise ConflictError(
                f"checkout would overwrite uncommitted changes in {', '.join(self.conflicts[:3])}"
                f"{' …' if len(self.conflicts) > 3 else ''}; `cairn commit` them first "
                "or rerun with --force to discard them")
        if self.missing:
            raise NotFoundError(
                f"{len(self.missing)} path(s) have no object in the cache, e.g. "
                f"{self.missing[0]}; run `cairn pull` to fetch them")


def checkout(project: ProjectContext, targets: Iterable[str] = (), force: bool = False,
             progress: Progress | None = None, cwd: Path | None = None,
             verify: bool = False) -> CheckoutResult:
    """`verify`: trust no stat cache entry — re-hash cache objects and workspace files."""
    result = CheckoutResult()
    with project.lock():
        if verify:
            project = project.trusting_no_stat_cache()
        worker = _Checkout(project, result, force, progress, verify)
        for ptr in select_tracked(project, targets, cwd):
            for out in ptr.outs:
                worker.out(ptr, out)
        project.state.flush()
    return result


@dataclass
class _Checkout:
    project: ProjectContext
    result: CheckoutResult
    force: bool
    progress: Progress | None
    verify: bool = False
    copying: bool = False  # the link types came down to "copy" here: copy small files

    def rel(self, path: Path) -> str:
        return path.relative_to(self.project.root).as_posix()

    def out(self, ptr: PointerFile, out: TrackedPath) -> None:
        path = ptr.out_path(out)
        if out.is_dir:
            self.directory(path, out)
        else:
            self.file(path, out.digest, "0644", keep_mode=True)

    def is_saved(self, path: Path) -> bool:
        """Could this workspace file be replaced without losing bytes?"""
        return self.force or self.project.odb.exists(file_digest(self.project, path))

    def copy_verified(self, oid: str, path: Path, mode: int) -> bool:
        """Copy a small object, hashing the bytes read: one read verifies and copies."""
        try:
            data = self.project.odb.read_bytes(oid, verify=True)
        except IntegrityError:
            self.reject(oid, path)
            return False
        write_copy(path, data, mode)
        return True

    def verified(self, oid: str, path: Path) -> bool:
        odb, state = self.project.odb, self.project.state
        obj = odb.oid_to_path(oid)
        st = os.stat(obj)
        if state.get(obj, st) == oid:
            return True
        started = time.time_ns()
        if hash_file(obj, st.st_size) == oid:
            state.put(obj, st, oid, started)
            return True
        self.reject(oid, path)
        return False

    def reject(self, oid: str, path: Path) -> None:
        """A corrupt object: out of the way of every later link, and reported."""
        self.project.odb.quarantine(oid, self.project.state)
        self.result.corrupt.append(self.rel(path))

    def file(self, path: Path, oid: str, mode: str, keep_mode: bool = False) -> None:
        odb = self.project.odb
        if self.verify and odb.exists(oid) and not self.verified(oid, path):
            return  # a hardlinked workspace file would show its rot as a conflict
        if path.is_dir() and not path.is_symlink():
            if not self.force:
                self.result.conflicts.append(self.rel(path))
                return
            shutil.rmtree(path)
        elif os.path.lexists(path):
            if path.exists() and file_digest(self.project, path) == oid:
                return
            if path.exists() and not self.is_saved(path):
                self.result.conflicts.append(self.rel(path))
                return
            if keep_mode and path.exists():
                mode = "0755" if os.stat(path).st_mode & 0o100 else mode
        if not odb.exists(oid):
            self.result.missing.append(self.rel(path))
            return
        if self.copying and odb.size(oid) < SMALL_FILE:
            if not self.copy_verified(oid, path, int(mode, 8)):
                return
        elif self.verified(oid, path):
            try:  # a copy is hashed as it is made: the stat cache cannot see rot in place
                kind = link(odb.oid_to_path(oid), path, self.project.link_types, int(mode, 8),
                            oid=oid)
            except IntegrityError:
                self.reject(oid, path)
                return
            self.copying = kind == "copy"
        else:
            return
        self.project.state.put(str(path), os.stat(path), oid)
        self.result.changed.append(self.rel(path))
        if self.progress:
            self.progress(1)

    def directory(self, path: Path, out: TrackedPath) -> None:
        odb = self.project.odb
        if not odb.exists(out.digest):
            self.result.missing.append(self.rel(path))
            return
        try:
            entries = list(walk_tree(odb, out.digest))
        except (IntegrityError, ObjectNotFound):
            self.result.corrupt.append(self.rel(path))
            return
        except FormatError as e:  # e.g. an entry named .git: refused, nothing written
            raise FormatError(f"{e} (the directory {self.rel(path)})") from None
        wanted = {rel: e for rel, e in entries if not e.is_dir}
        dirs = {rel for rel, e in entries if e.is_dir}
        for rel in sorted(dirs):
            if (path / rel).is_symlink():  # never write into a directory through a link
                raise PathError(f"{self.rel(path / rel)}: is a symlink, but the tracked "
                                f"directory {self.rel(path)} has a directory there; Cairn "
                                "never writes through it — remove it (git rm it if git "
                                "tracks it) and check out again", self.rel(path / rel))
        if os.path.lexists(path) and not path.is_dir():
            if not self.is_saved(path):
                self.result.conflicts.append(self.rel(path))
                return
            path.unlink()
        current = scan_workspace_dir(self.project, path).files if path.is_dir() else {}
        if path.is_dir() and current and self._unsaved(path, current):
            return
        for rel in sorted(current.keys() - wanted.keys()):
            (path / rel).unlink()
            self.result.removed.append(self.rel(path / rel))
        if path.is_dir():  # a directory that is now a file must be gone before linking
            _remove_empty_dirs(path, dirs)
        for rel, entry in wanted.items():
            if current.get(rel, ("",))[0] != entry.digest:
                self.file(path / rel, entry.digest, entry.mode)
        path.mkdir(parents=True, exist_ok=True)
        for rel in dirs:
            (path / rel).mkdir(parents=True, exist_ok=True)
        _remove_empty_dirs(path, dirs)

    def _unsaved(self, path: Path, current: dict[str, tuple[str, int, str]]) -> bool:
        if self.force:
            return False
        odb = self.project.odb
        unsaved = [rel for rel, (digest, _, _) in current.items() if not odb.exists(digest)]
        for rel in unsaved:
            self.result.conflicts.append(self.rel(path / rel))
        return bool(unsaved)


def _remove_empty_dirs(root: Path, keep: set[str]) -> None:
    for dirpath, _, _ in sorted(os.walk(root), key=lambda w: -len(w[0])):
        rel = Path(dirpath).relative_to(root).as_posix()
        if rel != "." and rel not in keep and not os.listdir(dirpath):
            os.rmdir(dirpath)
