"""`cairn add` and `cairn commit`: store paths in the cache and record them in pointer files.

Write order keeps a crash harmless: objects, then manifests, then the pointer file.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cairn import paths
from cairn.errors import PathError
from cairn.objects.links import link
from cairn.objects.tree import Progress, scan_dir, walk_tree
from cairn.project import pointer
from cairn.project.context import ProjectContext
from cairn.project.ignore import check_ignorable, ensure_ignored
from cairn.project.pointer import PointerFile
from cairn.project.tracked import TrackedPath


@dataclass
class AddResult:
    pointers: list[Path] = field(default_factory=list)
    gitignores: list[Path] = field(default_factory=list)
    staged: bool = False  # `git add`ed for the user (core.autostage)
    in_git: bool = False  # the project is in a git repository

    def to_git_add(self, root: Path) -> list[str]:
        return sorted({os.path.relpath(p, root) for p in [*self.pointers, *self.gitignores]})


def add(project: ProjectContext, paths: Iterable[str], progress: Progress | None = None,
        cwd: Path | None = None) -> AddResult:
    rels = [project.relpath(p, cwd) for p in paths]
    for rel in rels:
        check_addable(project, rel)
    result = AddResult()
    with project.lock():
        for rel in rels:
            path = project.root / rel
            out = track(project, path, progress)
            ptr_path = pointer.pointer_path_for(path)
            existing = pointer.load(ptr_path) if ptr_path.exists() else PointerFile(ptr_path, ())
            pointer.write(existing.with_out(out))
            result.pointers.append(ptr_path)
            if (ignored := ensure_ignored(path)) is not None:
                result.gitignores.append(ignored)
    _autostage(project, result)
    return result


def check_addable(project: ProjectContext, rel: str) -> None:
    path = project.root / rel
    if rel.endswith(pointer.SUFFIX):
        raise PathError(f"{rel}: is a pointer file; add the path it tracks instead", rel)
    if (problem := paths.encoding_problem(rel)) is not None:
        raise PathError(f"the path {problem}", rel)
    check_ignorable(rel)  # before anything is stored: no object, no pointer
    if not path.exists():
        raise PathError(f"{rel}: no such file or directory", rel)
    kind = _special_kind(path.stat().st_mode)
    if kind is not None:  # reading a FIFO would wait forever for a writer
        raise PathError(f"{rel}: is a {kind}; Cairn tracks regular files and directories",
                        rel)
    parts = rel.split("/")
    for i in range(1, len(parts)):
        ancestor = "/".join(parts[:i])
        if (project.root / (ancestor + pointer.SUFFIX)).is_file():
            raise PathError(f"{rel}: is inside the tracked directory {ancestor}; "
                            f"run `cairn commit {ancestor}` to record changes to it", rel)
    if path.is_dir():
        for inner in pointer.find_pointer_files(path):
            raise PathError(f"{rel}: contains the tracked {inner.relative_to(project.root)}; "
                            "track the directory or its parts, not both", rel)
    git = project.git
    if git is not None and git.is_tracked(rel):
        raise PathError(f"{rel}: is already tracked by git; run `git rm -r --cached {rel}` "
                        "and commit, then add it to Cairn", rel)


def _special_kind(mode: int) -> str | None:
    """What a path is when it is neither a regular file nor a directory."""
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "UNIX socket"
    return "device file" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "special file"


def track(project: ProjectContext, path: Path, progress: Progress | None = None) -> TrackedPath:
    """Store `path` (file or directory) in the cache; return its pointer entry."""
    if path.is_dir():
        scan = scan_dir(path, project.state, project.odb, project.jobs, progress,
                        inside=project.paths)
        out = TrackedPath(path.name, scan.oid, scan.size, scan.nfiles)
        if _links_into_cache(project):
            for rel, entry in walk_tree(project.odb, scan.oid):
                if not entry.is_dir:
                    _link_back(project, path / rel, entry.digest, entry.mode)
        return out
    started = time.time_ns()
    st = os.stat(path)
    known = project.state.get(str(path), st)
    oid, size = project.odb.add_file(path, known)
    project.state.put(str(path), st, oid, started)
    if progress:
        progress(1)
    if _links_into_cache(project):
        _link_back(project, path, oid, "0755" if st.st_mode & 0o100 else "0644")
    project.state.flush()
    return TrackedPath(path.name, oid, size)


def _links_into_cache(project: ProjectContext) -> bool:
    # With reflink or copy the workspace file already holds the right bytes.
    return project.link_types[0] in ("hardlink", "symlink")


def _link_back(project: ProjectContext, path: Path, oid: str, mode: str) -> None:
    link(project.odb.oid_to_path(oid), path, project.link_types, int(mode, 8))
    project.state.put(str(path), os.stat(path), oid)


def _autostage(project: ProjectContext, result: AddResult) -> None:
    git = project.git
    result.in_git = git is not None
    if git is None or not project.config.get("core.autostage", False):
        return
    git.add(result.to_git_add(git.root))
    result.staged = True


def commit(project: ProjectContext, targets: Iterable[str] = (),
           cwd: Path | None = None) -> list[Path]:
    """Record the current content of tracked outputs; return the pointer files changed."""
    from cairn.workspace.status import select_pointers

    changed = []
    with project.lock():
        for ptr in select_pointers(project, targets, cwd):
            updated = ptr
            for out in ptr.outs:
                path = ptr.out_path(out)
                if not path.exists():
                    raise PathError(f"{path.relative_to(project.root)}: is missing; "
                                    "restore it with `cairn checkout` or remove its pointer file")
                new = track(project, path)
                updated = updated.with_out(TrackedPath(out.path, new.digest, new.size, new.nfiles,
                                                       extra=out.extra))
            if updated.outs != ptr.outs:
                pointer.write(updated)
                changed.append(ptr.path)
    return changed
