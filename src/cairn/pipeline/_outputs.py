"""A stage's outputs: set aside before it runs, stored after, restored from the cache.

Before a stage runs, its outs are moved aside (non-persist outs: the command starts
without them, as in DVC) or copied aside (persist outs: the command sees them). If the
command fails, what it wrote is removed and the set-aside outs are moved back, so a
failed stage leaves the workspace as it was. After success they are deleted.

Outs with ``cache: true`` are stored in the object cache (directories as manifest
trees, as `cairn add` does) and git-ignored; ``cache: false`` outs (metrics) stay for
git, though their bytes are kept too so the run cache can bring them back.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from cairn.errors import IntegrityError, ObjectNotFound, PathError, UserError
from cairn.objects.hashing import hash_file
from cairn.objects.links import link
from cairn.objects.tree import scan_dir, walk_tree
from cairn.pipeline._changes import Workspace
from cairn.pipeline.schema import Output, Stage
from cairn.project.context import ProjectContext
from cairn.project.ignore import ensure_ignored
from cairn.project.tracked import TrackedPath
from cairn.workspace.add import track

ASIDE_DIR = "repro"  # under .cairn/tmp: outs set aside while their stage runs (repro.py)


def aside_root(project: ProjectContext) -> Path:
    return project.tmp_dir / ASIDE_DIR  # empty (removed) when no repro is running


@dataclass
class SetAside:
    """The outs of one running stage, out of its way until it succeeds or fails."""

    project: ProjectContext
    stage: Stage
    moved: dict[str, Path] = field(default_factory=dict)  # out path → where it is now

    def __enter__(self) -> SetAside:
        for out in self.stage.outs:
            path = self.project.root / out.path
            if os.path.lexists(path):
                self._set_aside(out, path)
            path.parent.mkdir(parents=True, exist_ok=True)
        return self

    def _set_aside(self, out: Output, path: Path) -> None:
        place = aside_root(self.project)
        place.mkdir(parents=True, exist_ok=True)
        kept = place / _aside_name(out.path)
        if out.persist:  # the command works on it in place: keep a copy
            if path.is_dir() and not path.is_symlink():
                shutil.copytree(path, kept, symlinks=True)
            else:
                shutil.copy2(path, kept, follow_symlinks=False)
            _unprotect(path)
        else:
            os.replace(path, kept)
        self.moved[out.path] = kept

    def __exit__(self, *exc: object) -> None:
        """Delete what is still set aside (all of it after success)."""
        for kept in self.moved.values():
            _remove(kept)
        self.moved.clear()

    def restore(self) -> None:
        """The command failed: remove what it wrote, put the old outs back."""
        for out in self.stage.outs:
            path = self.project.root / out.path
            _remove(path)
            kept = self.moved.pop(out.path, None)
            if kept is not None:
                os.replace(kept, path)


def _aside_name(rel: str) -> str:
    """Unique, and naming the out it holds, so a killed repro's outs can be put back."""
    from urllib.parse import quote

    name = quote(rel, safe="")
    return f"{uuid.uuid4().hex[:12]}-{name if len(name) <= 200 else ''}"


def put_back_leftovers(project: ProjectContext) -> list[str]:
    """Outs a killed repro had set aside go back where they were (what the killed
    command wrote there is dropped): the previous state, which the lock describes.
    Returns the outs put back."""
    from urllib.parse import unquote

    place = aside_root(project)
    try:
        leftovers = sorted(os.scandir(place), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    restored = []
    for entry in leftovers:
        rel = unquote(entry.name.partition("-")[2])
        try:
            target = project.paths.check(rel, str(place), "set-aside out")
        except PathError:
            continue  # not an out any pipeline could have: leave it to be removed below
        if rel:
            _remove(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(entry.path, target)
            restored.append(rel)
    shutil.rmtree(place, ignore_errors=True)
    return restored


def _unprotect(path: Path) -> None:
    """A persist out linked into the cache (hardlink/symlink) becomes a private writable
    copy, so the command can change it without touching the read-only object."""
    from cairn.objects.links import is_linked, unprotect

    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    for f in files:
        if is_linked(f):
            unprotect(f)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        try:
            shutil.rmtree(path)
        except PermissionError:  # a command left read-only directories
            _writable(path)
            shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _writable(directory: Path) -> None:
    """Directories a command left read-only would stop rmtree: open them up first."""
    for dirpath, _, _ in os.walk(directory):
        mode = os.stat(dirpath).st_mode
        if not mode & 0o200:
            os.chmod(dirpath, mode | 0o700)


def missing_outs(stage: Stage, root: Path) -> list[str]:
    return [o.path for o in stage.outs if not os.path.lexists(root / o.path)]


def store_outs(project: ProjectContext, stage: Stage, ws: Workspace, link_types: tuple[str, ...],
               ignores: list[Path]) -> tuple[TrackedPath, ...]:
    """Digest every out of a stage that just ran; cache and git-ignore the cached ones
    (.gitignore files changed are added to `ignores`). `link_types`: the project's,
    read once per repro."""
    stored = []
    for out in stage.outs:
        path = project.root / out.path
        ws.forget(out.path)
        found = _store(project, out.path, path, link_types if out.cache else None)
        if out.cache and (changed := ensure_ignored(path)) is not None:
            ignores.append(changed)
        ws.known(found)
        stored.append(found)
    return tuple(stored)


def _store(project: ProjectContext, rel: str, path: Path, link_types: tuple[str, ...] | None
           ) -> TrackedPath:
    """Store an out's bytes in the cache. With hardlink/symlink link types the workspace
    file becomes a link to the object, as `cairn add` does; `link_types=None` (cache:
    false outs, which git tracks) leaves the workspace file alone."""
    if not path.exists():
        raise UserError(f"{rel}: the stage's command did not create this out")
    if path.is_dir():
        if link_types is not None:
            tracked = track(project, path)
            return TrackedPath(rel, tracked.digest, tracked.size, tracked.nfiles)
        scan = scan_dir(path, project.state, project.odb, project.jobs,
                        inside=project.paths)
        return TrackedPath(rel, scan.oid, scan.size, scan.nfiles)
    started = time.time_ns()
    st = os.stat(path)
    state, odb = project.state, project.odb
    oid, size = odb.add_file(path, state.get(str(path), st), st)
    state.put(str(path), st, oid, started)
    if link_types is not None and link_types[0] in ("hardlink", "symlink"):
        link(odb.oid_to_path(oid), path, link_types, 0o755 if st.st_mode & 0o100 else 0o644)
        state.put(str(path), os.stat(path), oid)
    return TrackedPath(rel, oid, size)


def commit_missing(project: ProjectContext, stage: Stage, outs: tuple[TrackedPath, ...]) -> None:
    """Outs that are as recorded but whose objects the cache lacks (a repro killed
    before its objects were flushed, or a cleaned cache): store them again."""
    cached = {o.path for o in stage.outs if o.cache}
    for found in outs:
        if found.path in cached and not project.odb.exists(found.digest):
            _store(project, found.path, project.root / found.path, project.link_types)


def can_restore(project: ProjectContext, outs: tuple[TrackedPath, ...]) -> bool:
    """Does the cache hold every object needed to check these outs out?"""
    odb = project.odb
    try:
        for out in outs:
            if not odb.exists(out.digest):
                return False
            if out.is_dir:
                for _, entry in walk_tree(odb, out.digest):
                    if not odb.exists(entry.digest):
                        return False
    except (ObjectNotFound, IntegrityError, UserError):
        return False
    return True


def restore_outs(project: ProjectContext, stage: Stage, outs: tuple[TrackedPath, ...],
                 link_types: tuple[str, ...], ignores: list[Path]) -> None:
    """Put recorded outs into the workspace from the cache (verified before linking)."""
    specs = {o.path: o for o in stage.outs}
    for out in outs:
        path = project.root / out.path
        types = link_types if specs[out.path].cache else ("copy",)
        _remove(path)
        if out.is_dir:
            path.mkdir(parents=True)
            for rel, entry in walk_tree(project.odb, out.digest):
                if entry.is_dir:
                    (path / rel).mkdir(exist_ok=True)
                else:
                    _link_verified(project, entry.digest, path / rel, types, int(entry.mode, 8))
        else:
            _link_verified(project, out.digest, path, types, 0o644)
        if specs[out.path].cache and (changed := ensure_ignored(path)) is not None:
            ignores.append(changed)


def _link_verified(project: ProjectContext, oid: str, path: Path, types: tuple[str, ...],
                   mode: int) -> None:
    """Link (hashed once, then vouched for by the stat cache) or copy (hashed as it is
    copied) a cache object into the workspace; a corrupt one is quarantined."""
    obj = project.odb.oid_to_path(oid)
    st = os.stat(obj)
    try:
        if project.state.get(obj, st) != oid:
            if hash_file(obj, st.st_size) != oid:
                raise IntegrityError(f"cache object {oid} is corrupt", oid)
            project.state.put(obj, st, oid)
        link(obj, path, types, mode, oid=oid)
    except IntegrityError:
        project.odb.quarantine(oid, project.state)
        raise IntegrityError(f"cache object {oid} for {path} is corrupt; it was "
                             "quarantined — rerun, or `cairn pull` a good copy", oid) from None
    project.state.put(str(path), os.stat(path), oid)
