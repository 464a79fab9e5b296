"""`cairn status`: which tracked outputs differ from their pointer files or cairn.lock.

Unchanged files are never re-hashed: the stat cache answers for them.
"""

from __future__ import annotations

import os
import posixpath
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cairn.errors import NotFoundError
from cairn.objects.hashing import hash_file
from cairn.objects.tree import DirScan, scan_dir, walk_tree
from cairn.project import pointer
from cairn.project.context import ProjectContext
from cairn.project.lockfile import LOCK_NAME, LockFile, is_lock_path, read_lock
from cairn.project.pointer import PointerFile
from cairn.project.tracked import TrackedPath


@dataclass
class OutStatus:
    path: str  # relative to the repository root
    state: str  # "unchanged", "modified", "deleted", "not in cache"
    changes: dict[str, list[str]] = field(default_factory=dict)  # added/modified/deleted

    def to_dict(self) -> dict[str, object]:
        return {"path": self.path, "state": self.state, **self.changes}


def select_pointers(project: ProjectContext, targets: Iterable[str] = (),
                    cwd: Path | None = None) -> list[PointerFile]:
    """Pointer files for `targets` (tracked paths, pointer files or directories), or all."""
    return _select(project, list(targets), cwd, with_locks=False)


def select_tracked(project: ProjectContext, targets: Iterable[str] = (),
                   cwd: Path | None = None) -> list[PointerFile]:
    """What the workspace should contain: as `select_pointers`, and each cairn.lock as a
    pointer file of its cached outs (targets may also name lock outs or lock files).
    Only for reading and checking out: a lock view is never written as a pointer file."""
    return _select(project, list(targets), cwd, with_locks=True)


def _select(project: ProjectContext, targets: list[str], cwd: Path | None, with_locks: bool
            ) -> list[PointerFile]:
    selected = _select_unchecked(project, targets, cwd, with_locks)
    for ptr in selected:  # every path, before anything is written
        check_outs(project, ptr)
    return selected


def check_outs(project: ProjectContext, ptr: PointerFile) -> None:
    """PathError unless every out of `ptr` names a safe place in the workspace: its text
    and the disk (no symlink out of the workspace or into .git/.cairn), cairn.paths."""
    where = ptr.path.relative_to(project.root).as_posix()
    base = posixpath.dirname(where)
    for out in ptr.outs:
        # lock views name outs relative to the lock (`../data`), checked root-relative
        project.paths.check(posixpath.normpath(posixpath.join(base, out.path)), where,
                                 "out")


def _select_unchecked(project: ProjectContext, targets: list[str], cwd: Path | None,
                      with_locks: bool) -> list[PointerFile]:
    if not targets:
        return [ptr for p in pointer.find_pointer_files(project.root,
                                                        LOCK_NAME if with_locks else None)
                if (ptr := _load(project, p)).outs]
    found: list[PointerFile] = []
    locks: list[LockFile] | None = None
    for target in targets:
        rel = project.relpath(target, cwd)
        path = project.root / rel
        ptr_path = path if rel.endswith(pointer.SUFFIX) else pointer.pointer_path_for(path)
        if ptr_path.is_file():
            found.append(_load(project, ptr_path))
            continue
        if with_locks and is_lock_path(rel) and path.is_file():
            found.append(_load(project, path))
            continue
        outs: list[PointerFile] = []
        if with_locks:
            locks = workspace_locks(project) if locks is None else locks
            outs = [lock.as_pointer(project.root, covered) for lock in locks
                    if (covered := [o.path for o in lock.cached_outs() if _covers(rel, o.path)])]
        if path.is_dir():
            found.extend(_load(project, p) for p in pointer.find_pointer_files(path))
        elif not outs:
            also = f", not a cached out in a {LOCK_NAME}" if with_locks else ""
            raise NotFoundError(f"{rel}: not tracked by Cairn (no {ptr_path.name}{also}); "
                                f"track it with `cairn add {rel}`")
        found.extend(outs)
    return found


def workspace_locks(project: ProjectContext) -> list[LockFile]:
    """Every cairn.lock in the workspace."""
    return [read_lock(project.root, p.relative_to(project.root).as_posix())
            for p in pointer.find_pointer_files(project.root, LOCK_NAME) if p.name == LOCK_NAME]


def _load(project: ProjectContext, path: Path) -> PointerFile:
    """A pointer file or cairn.lock (as a pointer), never read through a symlink out."""
    rel = path.relative_to(project.root).as_posix()
    project.paths.check(rel, rel, "file")
    if path.name == LOCK_NAME:
        return read_lock(project.root, rel).as_pointer(project.root)
    return pointer.load(path)


def _covers(target: str, out_path: str) -> bool:
    return target in ("", ".") or out_path == target or out_path.startswith(target + "/")


def file_digest(project: ProjectContext, path: Path, st: os.stat_result | None = None) -> str:
    """The digest of a workspace file, from the stat cache when it is unchanged."""
    st = st or os.stat(path)
    known = project.state.get(str(path), st)
    if known is not None:
        return known
    started = time.time_ns()
    digest = hash_file(path, st.st_size)
    project.state.put(str(path), st, digest, started)
    return digest


def scan_workspace_dir(project: ProjectContext, path: Path, want_files: bool = True) -> DirScan:
    return scan_dir(path, project.state, None, project.jobs, want_files=want_files,
                    inside=project.paths)


def out_status(project: ProjectContext, ptr: PointerFile, out: TrackedPath) -> OutStatus:
    path = ptr.out_path(out)
    rel = path.relative_to(project.root).as_posix()
    if not os.path.exists(path):  # also a symlink whose target is gone
        return OutStatus(rel, "deleted")
    if out.is_dir != path.is_dir():
        return OutStatus(rel, "modified")
    if out.is_dir:
        scan = scan_workspace_dir(project, path, want_files=False)
        if scan.oid != out.digest:
            if not scan.files:  # answered from the directory cache: look inside now
                scan = scan_workspace_dir(project, path)
            return OutStatus(rel, "modified", diff_dir(project, out.digest, scan))
    elif file_digest(project, path) != out.digest:
        return OutStatus(rel, "modified")
    if not project.odb.exists(out.digest):
        return OutStatus(rel, "not in cache")
    return OutStatus(rel, "unchanged")


def diff_dir(project: ProjectContext, recorded: str, scan: DirScan) -> dict[str, list[str]]:
    """Files added, modified and deleted against the recorded manifest, if it is cached."""
    if not project.odb.exists(recorded):
        return {}
    before = {rel: e.digest for rel, e in walk_tree(project.odb, recorded) if not e.is_dir}
    now = {rel: digest for rel, (digest, _, _) in scan.files.items()}
    return {
        "added": sorted(now.keys() - before.keys()),
        "modified": sorted(r for r in now.keys() & before.keys() if now[r] != before[r]),
        "deleted": sorted(before.keys() - now.keys()),
    }


def status(project: ProjectContext, targets: Iterable[str] = (), cwd: Path | None = None
           ) -> list[OutStatus]:
    result = [out_status(project, ptr, out)
              for ptr in select_tracked(project, targets, cwd) for out in ptr.outs]
    project.state.flush()
    return result
