"""`cairn gc`: delete cache (and remote) objects that nothing in scope references.

What is referenced is `cairn.lifecycle.liveness`'s answer: the outs of the pointer files
and cairn.lock files in the workspace (always in scope) and, with a git scope, at each
tag, branch or commit, read from git (pointer files anywhere in the git repository: a
shared cache may hold their objects); and, whatever the scope, registered model versions
and live runs' artifacts. A directory out references its manifest and every object below.

Safety: gc never deletes the only copy. A cache object is deleted only when the remote
(`-r`, else `core.remote`) holds it, unless `--force`; with no remote, nothing leaves the
cache without `--force`. gc cannot see inside a referenced manifest it cannot read; that
is harmless for the cache (the remote-copy rule still protects the children) but not
for `--cloud` or `--force`, which then refuse instead of guessing.

`--cloud` also removes what killed pushes left on the remote (temp files, unfinished
multipart uploads), once nothing has written to them for `TEMP_AGE` (a day): no lock
spans the clones that push there, and a live push keeps writing to its own.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from cairn.errors import CairnError, NotFoundError
from cairn.lifecycle import liveness
from cairn.lifecycle.liveness import Reference, manifest_reader
from cairn.objects.odb import ObjectDB
from cairn.project.context import ProjectContext
from cairn.project.revisions import RevisionScope
from cairn.remotes import leftovers
from cairn.remotes.connect import has_remote, open_remote
from cairn.remotes.leftovers import Leftover

# Temp files on a remote unwritten for this long belong to no live push (remotes.leftovers).
TEMP_AGE = 24 * 3600


WORKSPACE_ONLY = RevisionScope()


def gc_scope(revisions: RevisionScope) -> liveness.Scope:
    """What gc keeps: the revisions' tracked outs, anywhere in the git repository, the
    lock outs git keeps, and what the registry names."""
    return liveness.Scope(revisions=revisions, beyond_project=True, git_kept_outs=True,
                          registry=True, purpose="gc")


# -- gc --------------------------------------------------------------------------------

@dataclass
class GcResult:
    scope: str
    dry_run: bool
    remote: str | None  # checked for copies (and cleaned with --cloud); None: no remote
    cloud: bool = False
    referenced: int = 0
    removed: dict[str, int] = field(default_factory=dict)  # cache oid → bytes
    removed_from_remote: dict[str, int] = field(default_factory=dict)
    kept_only_copy: dict[str, int] = field(default_factory=dict)  # unreferenced, not on remote
    remote_temp_files: list[Leftover] = field(default_factory=list)  # of killed pushes
    temp_age: int = TEMP_AGE  # seconds unwritten before a remote temp file is removed

    @property
    def bytes_freed(self) -> int:
        return sum(self.removed.values())

    @property
    def remote_bytes_freed(self) -> int:
        return sum(self.removed_from_remote.values())

    @property
    def bytes_kept(self) -> int:
        return sum(self.kept_only_copy.values())

    @property
    def remote_temp_bytes(self) -> int:
        return sum(t.size for t in self.remote_temp_files)

    def to_dict(self) -> dict[str, object]:
        return {"scope": self.scope, "dry_run": self.dry_run, "remote": self.remote,
                "cloud": self.cloud, "referenced": self.referenced, "removed": self.removed,
                "removed_from_remote": self.removed_from_remote,
                "kept_only_copy": self.kept_only_copy, "bytes_freed": self.bytes_freed,
                "remote_bytes_freed": self.remote_bytes_freed,
                "remote_temp_files": {t.describe(): t.size for t in self.remote_temp_files},
                "remote_temp_bytes": self.remote_temp_bytes,
                "temp_age_seconds": self.temp_age}


def gc(project: ProjectContext, scope: RevisionScope = WORKSPACE_ONLY, *, cloud: bool = False,
       remote: str | None = None, force: bool = False, dry_run: bool = False,
       jobs: int | None = None,
       providers: Iterable[liveness.Provider] = liveness.PROVIDERS) -> GcResult:
    """Delete unreferenced objects from the cache (and with `cloud`, the remote)."""
    jobs = jobs or project.jobs
    with project.lock():
        store = (open_remote(project.config, remote, "gc --cloud")
                 if cloud or has_remote(project.config, remote) else None)
        refs = liveness.in_scope(project, gc_scope(scope), providers)
        referenced = liveness.expand(refs, manifest_reader(project.odb, store))
        if referenced.unseen_trees and (cloud or force):
            raise _unseen_tree_error(referenced.unseen_trees, store, cloud)
        result = GcResult(scope.describe(), dry_run, store.name if store else None, cloud,
                          len(referenced.oids))
        _plan_cache(project.odb, referenced.oids, store, force, jobs, result)
        if cloud:
            assert store is not None
            _plan_remote(store, referenced.oids, jobs, result)
        if not dry_run:
            _sweep(project, store, result)
    return result


def _unseen_tree_error(unseen: dict[str, Reference], store: ObjectDB | None,
                       cloud: bool) -> CairnError:
    oid, ref = next(iter(unseen.items()))
    where = f"the cache or remote {store.name!r}" if store else "the cache"
    flag = "--cloud" if cloud else "--force"
    more = f" (and {len(unseen) - 1} more)" if len(unseen) > 1 else ""
    return NotFoundError(f"cannot read the manifest {oid} of {ref.describe()}{more} from "
                         f"{where}, so gc cannot tell what is inside it; fetch it first "
                         f"(`cairn fetch`, with the same --all-… options), or run gc without "
                         f"{flag}")


def _plan_cache(odb: ObjectDB, referenced: set[str], store: ObjectDB | None,
                force: bool, jobs: int, result: GcResult) -> None:
    garbage = {oid: size for oid in odb.list_oids()
               if oid not in referenced and (size := _cache_size(odb, oid)) is not None}
    if force:
        result.removed = garbage
        return
    on_remote = store.exists_many(list(garbage), jobs) if store and garbage else set()
    for oid, size in garbage.items():
        (result.removed if oid in on_remote else result.kept_only_copy)[oid] = size


def _cache_size(odb: ObjectDB, oid: str) -> int | None:
    try:
        return odb.size(oid)
    except NotFoundError:
        return None


def _plan_remote(store: ObjectDB, referenced: set[str], jobs: int,
                 result: GcResult) -> None:
    listing = store.sizes(None, jobs)  # one listing gives names and sizes
    result.removed_from_remote = {oid: size for oid, size in listing.items()
                                  if oid not in referenced}
    result.remote_temp_files = leftovers.find(store, _now() - result.temp_age)


def _now() -> float:
    return time.time()


def _sweep(project: ProjectContext, store: ObjectDB | None, result: GcResult) -> None:
    project.odb.remove_leftovers()  # temp files of killed writers; we hold the lock
    # Remote first: if that fails half way, the cache still holds a copy.
    if result.removed_from_remote and store is not None:
        index = project.remote_index()
        index.forget(store.url, result.removed_from_remote)  # before: a crash between
        index.close()                                       # must not leave it believed
        store.remove(list(result.removed_from_remote))
    if result.remote_temp_files and store is not None:
        leftovers.remove(store, result.remote_temp_files)
    project.odb.remove(result.removed)
    # A later object at a reused inode must not inherit this one's verified digest.
    project.state.forget(project.odb.oid_to_path(oid) for oid in result.removed)
