"""gc keeps what pipeline locks name: the outs recorded in every cairn.lock.

Importing this module registers a reference provider with `cairn.workspace.gc`: the
outs of each `cairn.lock` in the workspace and, for the git revisions in gc's scope,
of each `cairn.lock` committed there. (The run cache is a shortcut, not a record: its
objects are kept only while something else names them.)
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from cairn.errors import FormatError
from cairn.project.context import ProjectContext
from cairn.project.lockfile import LOCK_NAME, LockFile, loads, read_lock
from cairn.project.pointer import SKIP_DIRS
from cairn.workspace.gc import WORKSPACE, Reference, register_reference_provider


@register_reference_provider
def lock_references(project: ProjectContext, revisions: Sequence[str]) -> Iterator[Reference]:
    for rel in _workspace_locks(project):
        yield from _outs(read_lock(project.root, rel), WORKSPACE)
    git = project.git
    if git is None or not revisions:
        return
    prefix = project.root.relative_to(git.root).as_posix()
    prefix = "" if prefix == "." else prefix + "/"
    for sha in revisions:
        paths = [p for p in git.files_at(sha, LOCK_NAME)
                 if p.startswith(prefix) and p.rpartition("/")[2] == LOCK_NAME]
        for path, data in git.read_blobs(sha, paths):
            try:
                lock = loads(data, path[len(prefix):])
            except FormatError as e:
                # Skipping it could delete what it names: stop and say where.
                raise FormatError(f"{e} (in commit {sha[:7]}); gc cannot tell what it "
                                  "references — leave that revision out of the gc scope"
                                  ) from None
            yield from _outs(lock, f"commit {sha[:7]}")


def _workspace_locks(project: ProjectContext) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(project.root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        if LOCK_NAME in filenames:
            rel = os.path.relpath(os.path.join(dirpath, LOCK_NAME), project.root)
            yield rel.replace(os.sep, "/")


def _outs(lock: LockFile, source: str) -> Iterator[Reference]:
    for stage in lock.stages.values():
        for out in stage.outs:
            yield Reference(out.digest, out.is_dir, out.path, source)
