"""`cairn get` and `cairn.api.open`: a tracked artifact as of any git revision.

The artifact is found in git at that revision (`cairn.project.snapshot`) — its pointer
file (``PATH.cairn`` or one of a tracked directory above it), an output recorded in a
``cairn.lock``, or a file git itself holds — and its bytes come from a local cache, else
from a remote as the repository configures it now, or as the config committed at that
revision did for a remote that exists only there (`cairn.workspace.source`). Every
object is verified against its digest; `get` writes its copy atomically.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

from cairn.errors import NotFoundError, PathError, UserError
from cairn.project.context import DOT_DIR
from cairn.workspace.source import ObjectSource, open_repo

if TYPE_CHECKING:
    from cairn.objects.tree import TreeEntry
    from cairn.project.context import ProjectContext
    from cairn.project.snapshot import Snapshot


# -- where an artifact is recorded -----------------------------------------------------


@dataclass(frozen=True)
class Artifact:
    """A tracked path as recorded at a revision."""

    path: str  # as asked, relative to the project
    digest: str = ""  # of the file or the directory manifest; "" for a file in git
    size: int = 0
    is_dir: bool = False
    inner: str = ""  # a path below the tracked directory `digest`, "" for itself
    blob: bytes | None = None  # the content, for a file git holds


def clean_path(path: str) -> str:
    """A user's artifact path as a clean posix path inside the project, or a PathError."""
    norm = posixpath.normpath(path.replace(os.sep, "/"))
    if posixpath.isabs(norm) or norm == ".." or norm.startswith("../"):
        raise PathError(f"{path}: must be a path inside the repository, relative to its root",
                        path)
    if norm in (".", "") or norm.split("/")[0] in (".git", DOT_DIR):
        raise PathError(f"{path}: name a tracked file or directory of the repository", path)
    return norm


def find_artifact(snap: Snapshot, path: str) -> Artifact:
    """How `path` is recorded in `snap`: pointer file, cairn.lock output, or git itself."""
    path = clean_path(path)
    found = _from_pointers(snap, path) or _from_locks(snap, path)
    if found is not None:
        return found
    blob = snap.read([path]).get(path)
    if blob is not None:
        return Artifact(path, size=len(blob), blob=blob)
    raise NotFoundError(f"{path} is not tracked at {snap.label}: no {path}.cairn "
                        "or pointer file of a directory above it, no cairn.lock output, "
                        "not in git; check the path and the revision")


def _ancestors(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(len(parts), 0, -1)]


def _from_pointers(snap: Snapshot, path: str) -> Artifact | None:
    from cairn.project import pointer

    candidates = [a + pointer.SUFFIX for a in _ancestors(path)]
    found = snap.read(candidates)
    for candidate in candidates:  # the deepest pointer file wins
        if candidate in found:
            ptr = pointer.loads(found[candidate], Path(f"{snap.label}:{candidate}"))
            base = posixpath.dirname(candidate)
            for out in ptr.outs:
                hit = _match(posixpath.join(base, out.path), path, out.digest, out.size,
                             out.is_dir)
                if hit is not None:
                    return hit
    return None


def _from_locks(snap: Snapshot, path: str) -> Artifact | None:
    for lock in snap.locks():
        for stage in lock.stages.values():
            for out in stage.outs:
                hit = _match(out.path, path, out.digest, out.size, out.is_dir)
                if hit is not None:
                    return hit
    return None


def _match(tracked: str, path: str, digest: str, size: int, is_dir: bool) -> Artifact | None:
    tracked = posixpath.normpath(tracked)
    if tracked == path:
        return Artifact(path, digest, size, is_dir)
    if is_dir and path.startswith(tracked + "/"):
        return Artifact(path, digest, size, True, inner=path[len(tracked) + 1:])
    return None


# -- reading and writing an artifact ----------------------------------------------------


@contextlib.contextmanager
def locate(here: ProjectContext | None, repo: str | None, path: str, rev: str | None,
           remote: str | None) -> Iterator[tuple[Artifact, ObjectSource]]:
    """The artifact `path` at `rev` of `repo`, and where its objects can be read; `here`
    is the project the caller runs in (None outside one): its cache serves too."""
    with open_repo(here, repo) as src:
        snap = src.snapshot(rev)
        artifact = find_artifact(snap, path)
        where = f"{artifact.path} at {snap.label}"
        objects = ObjectSource(src.caches, src.config(snap), remote, where)
        try:
            yield descend(artifact, objects), objects
        finally:
            objects.close()


def descend(artifact: Artifact, objects: ObjectSource) -> Artifact:
    """For a path inside a tracked directory: the entry it names there."""
    if not artifact.inner:
        return artifact
    from cairn.objects.tree import decode_tree

    digest, parts = artifact.digest, artifact.inner.split("/")
    for i, name in enumerate(parts):
        entries = {e.name: e for e in decode_tree(objects.read(digest), digest)}
        entry = entries.get(name)
        if entry is None or (i < len(parts) - 1 and not entry.is_dir):
            raise NotFoundError(f"{artifact.path} is not in its tracked directory "
                                f"({objects.where}); check the path")
        digest = entry.digest
    assert entry is not None
    return Artifact(artifact.path, entry.digest, entry.size, entry.is_dir)


@contextlib.contextmanager
def open_artifact(here: ProjectContext | None, path: str, repo: str | None = None,
                  rev: str | None = None, remote: str | None = None) -> Iterator[IO[bytes]]:
    """A binary file of the artifact's verified bytes."""
    import io

    with locate(here, repo, path, rev, remote) as (artifact, objects):
        if artifact.is_dir:
            raise UserError(f"{artifact.path} is a directory; open a file inside it, or copy "
                            "it with `cairn get`")
        if artifact.blob is not None:
            yield io.BytesIO(artifact.blob)
            return
        with open(objects.path(artifact.digest), "rb") as f:
            yield f


@dataclass(frozen=True)
class GetResult:
    path: Path  # what was written
    files: int
    size: int


def get(here: ProjectContext | None, repo: str | None, path: str, rev: str | None = None,
        out: str | None = None, remote: str | None = None, force: bool = False) -> GetResult:
    """Copy the artifact to `out` (default: its name, here), atomically."""
    with locate(here, repo, path, rev, remote) as (artifact, objects):
        dest = Path(out or posixpath.basename(artifact.path)).absolute()
        if os.path.lexists(dest) and not force:
            raise UserError(f"{dest} already exists; remove it, choose another -o, or --force")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if artifact.is_dir:
            files = list(_walk(objects, artifact.digest, ""))
            sources = objects.paths(e.digest for _, e in files)
            _replace_dir(dest, files, sources)
            return GetResult(dest, len(files), sum(e.size for _, e in files))
        from cairn.fsutil import atomic_copy, atomic_write

        if artifact.blob is not None:
            with _directory_aside(dest):  # --force over a directory
                atomic_write(dest, artifact.blob)
        else:
            src = objects.path(artifact.digest)  # fetched before anything at dest moves
            with _directory_aside(dest):
                atomic_copy(src, dest)
        return GetResult(dest, 1, artifact.size)


def _walk(objects: ObjectSource, digest: str, prefix: str) -> Iterator[tuple[str, TreeEntry]]:
    from cairn.objects.tree import decode_tree

    for entry in decode_tree(objects.read(digest), digest):
        if entry.is_dir:
            yield from _walk(objects, entry.digest, f"{prefix}{entry.name}/")
        else:
            yield f"{prefix}{entry.name}", entry


def _copy_durable(src: str, dest: Path, mode: int = 0o644) -> None:
    import shutil

    shutil.copyfile(src, dest)
    os.chmod(dest, mode)
    with open(dest, "rb+") as f:
        os.fsync(f.fileno())


@contextlib.contextmanager
def _directory_aside(dest: Path) -> Iterator[None]:
    """A directory at `dest` is moved beside it while a file replaces it: put back if
    that fails, removed once the file is in place."""
    if not dest.is_dir() or dest.is_symlink():
        yield
        return
    import shutil
    import tempfile

    old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".old"))
    os.replace(dest, old / "x")
    try:
        yield
    except BaseException:
        os.replace(old / "x", dest)
        old.rmdir()
        raise
    shutil.rmtree(old, ignore_errors=True)


def _replace_dir(dest: Path, files: list[tuple[str, TreeEntry]], sources: dict[str, str]
                 ) -> None:
    """Build the directory beside `dest`, then rename it into place in one step."""
    import shutil
    import tempfile

    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
    try:
        for rel, entry in files:
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            _copy_durable(sources[entry.digest], target, 0o755 if entry.mode == "0755"
                          else 0o644)
        os.chmod(tmp, 0o755)
        if os.path.lexists(dest):  # --force: the old one goes only once the new one is whole
            old = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".old"))
            os.replace(dest, old / "x")
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
