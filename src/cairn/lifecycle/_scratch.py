"""The scratch side of a reproduction: a detached git worktree, recorded objects placed
in it by digest (copies, never links into the cache), and what the rebuild tracked in
its own database and cache."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from cairn.errors import CairnError, FormatError, ObjectNotFound
from cairn.objects.odb import ObjectDB
from cairn.objects.tree import TreeEntry, read_tree, walk_tree
from cairn.paths import Root
from cairn.store.base import MetadataStore

if TYPE_CHECKING:
    from cairn.store.entities import ModelVersion, Run

NO_HOOKS = ("-c", "core.hooksPath=/dev/null")  # a post-checkout hook would run `cairn checkout`
TREE_HEAD = b'{"entries":['  # how every directory manifest starts (cairn.objects.tree)
NOT_SHOWN = 20  # differing files listed at most


def git(cwd: Path, *args: str, input: bytes | None = None,
        check: bool = True) -> subprocess.CompletedProcess[bytes]:
    proc = subprocess.run(["git", *args], cwd=cwd, input=input, capture_output=True,
                          check=False)
    if check and proc.returncode != 0:
        raise CairnError(f"git {' '.join(args)} failed: {last_line(proc.stderr)}")
    return proc


def last_line(stderr: bytes) -> str:
    lines = stderr.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "no message"


def remove_worktree(git_root: Path, work: Path, scratch: Path) -> None:
    """The scratch tree gone and git's record of it pruned: `git worktree list` as before."""
    git(git_root, "worktree", "remove", "--force", str(work), check=False)
    shutil.rmtree(scratch, ignore_errors=True)
    git(git_root, "worktree", "prune", check=False)


def is_tree(odb: ObjectDB, digest: str) -> bool:
    try:
        with odb.open(digest) as f:
            if f.read(len(TREE_HEAD)) != TREE_HEAD:
                return False
        read_tree(odb, digest)
    except (FormatError, ObjectNotFound):
        return False
    return True


def complete(odb: ObjectDB, digest: str) -> bool:
    """`digest` is in `odb`, and for a directory, every object below it too."""
    if not odb.exists(digest):
        return False
    if not is_tree(odb, digest):
        return True
    try:
        return all(odb.exists(e.digest) for _, e in walk_tree(odb, digest))
    except (ObjectNotFound, FormatError):
        return False


def place(odb: ObjectDB, inside: Root, rel: str, digest: str) -> None:
    """A copy of object `digest` (a file, or a directory's files) at `rel`, each hashed
    as it is copied; never a link into the cache, which the rebuild could write through."""
    from cairn.objects.links import link

    if not is_tree(odb, digest):
        link(odb.oid_to_path(digest), inside.check(rel), ("copy",), 0o644, oid=digest)
        return
    inside.check(rel).mkdir(parents=True, exist_ok=True)
    for sub, entry in walk_tree(odb, digest):
        path = inside.check(f"{rel}/{sub}", what="directory entry")
        if entry.is_dir:
            path.mkdir(parents=True, exist_ok=True)
        else:
            link(odb.oid_to_path(entry.digest), path, ("copy",), int(entry.mode, 8),
                 oid=entry.digest)


@contextlib.contextmanager
def scratch_store(db: Path) -> Iterator[MetadataStore | None]:
    if not db.is_file():
        yield None  # the rebuild tracked nothing
        return
    from cairn.store.open import normalize_uri, open_store

    store = open_store(normalize_uri(str(db)))
    try:
        yield store
    finally:
        store.close()


def newest_version(store: MetadataStore, name: str) -> ModelVersion | None:
    from cairn.registry.uris import quote_string

    found = store.search_model_versions(f"name = '{quote_string(name)}'")
    return max((mv for mv in found if mv.name == name), key=lambda mv: mv.version,
               default=None)


def rebuilt_run(store: MetadataStore, version: ModelVersion | None) -> Run | None:
    """The run that registered the rebuilt version, else the newest the rebuild made."""
    if version is not None and version.run_id:
        return store.get_run(version.run_id)
    experiments = [e.experiment_id for e in store.search_experiments()]
    runs = list(store.search_runs(experiments)) if experiments else []
    return max(runs, key=lambda r: r.info.start_time, default=None)


def locked_out(root: Path, out: str) -> str | None:
    from cairn.project.lockfile import LOCK_NAME, read_lock

    lock = read_lock(root, LOCK_NAME)
    return next((o.digest for s in lock.stages.values() for o in s.outs if o.path == out),
                None)


def artifact_digest(store: MetadataStore, run: Run, source: object) -> str | None:
    """The digest of what the rebuilt run logged where the recorded version's run did."""
    if not isinstance(source, str) or not source.startswith("runs:/"):
        return None
    path = source[len("runs:/"):].partition("/")[2].strip("/")
    return next((a.digest for a in store.list_artifacts(run.info.run_id, path)
                 if a.path.strip("/") == path), None)


def differing_files(recorded_odb: ObjectDB, recorded: str, rebuilt_odb: ObjectDB,
                     rebuilt: str) -> list[str]:
    """Which files of two directory artifacts differ (empty when either is not at hand)."""
    left, right = files(recorded_odb, recorded), files(rebuilt_odb, rebuilt)
    if left is None or right is None:
        return []
    names = sorted(n for n in left.keys() | right.keys() if left.get(n) != right.get(n))
    return names[:NOT_SHOWN]


def files(odb: ObjectDB, digest: str) -> dict[str, str] | None:
    if not is_tree(odb, digest):
        return None
    try:
        entries: list[tuple[str, TreeEntry]] = list(walk_tree(odb, digest))
    except (ObjectNotFound, FormatError):
        return None
    return {rel: e.digest for rel, e in entries if not e.is_dir}
