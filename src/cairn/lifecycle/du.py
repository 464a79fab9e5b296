"""`cairn du`: what the live data would take without dedup, and what it takes.

Logical size counts every version of the data that something live keeps, each in full,
as a store keeping a copy per version would: the outs of the workspace's pointer files
and cairn.lock files, the same at every git tag and branch (once per commit, however
many refs name it), and what the registry keeps (model versions, live runs' artifacts,
packages). A directory counts the sizes of its files, from its manifest. Stored size is
a store's unique objects and their bytes, manifests and unreferenced objects included
(`cairn gc` reclaims those). A reader: it takes no lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cairn.errors import NotFoundError
from cairn.lifecycle import liveness
from cairn.lifecycle.liveness import Reference, manifest_reader
from cairn.objects.odb import ObjectDB
from cairn.project.context import ProjectContext
from cairn.project.revisions import RevisionScope
from cairn.remotes.connect import open_remote

CACHE = "cache"


@dataclass(frozen=True)
class StoreUsage:
    store: str  # "cache", or the remote's name
    objects: int
    bytes: int


@dataclass
class DiskUsage:
    outs: int = 0  # live files and directories, once per version and place
    files: int = 0  # live files, counting those inside directories
    logical_bytes: int = 0
    stores: list[StoreUsage] = field(default_factory=list)

    def dedup_ratio(self, usage: StoreUsage) -> float | None:
        """Logical over stored bytes: 2.0 means the data would take twice the space."""
        return self.logical_bytes / usage.bytes if usage.bytes else None

    def to_dict(self) -> dict[str, object]:
        return {"outs": self.outs, "files": self.files, "logical_bytes": self.logical_bytes,
                "stores": [{"store": s.store, "objects": s.objects, "bytes": s.bytes,
                            "dedup_ratio": self.dedup_ratio(s)} for s in self.stores]}


def du(project: ProjectContext, remote: str | None = None, jobs: int | None = None) -> DiskUsage:
    """Logical size of the live data vs what the cache (and `remote`) store."""
    usage = DiskUsage()
    store = open_remote(project.config, remote) if remote is not None else None
    history = RevisionScope(all_tags=True, all_branches=True) if project.git else RevisionScope()
    live = liveness.Scope(revisions=history, registry=True, purpose="du")
    measure = _Measure(project.odb, store)
    for ref in _counted(set(liveness.in_scope(project, live)), measure.read):
        files, size = measure(ref)
        usage.outs += 1
        usage.files += files
        usage.logical_bytes += size
    usage.stores.append(cache_usage(project.odb))
    if store is not None:
        usage.stores.append(remote_usage(store, jobs or project.jobs))
    return usage


def _counted(refs: set[Reference], read: liveness.ManifestReader) -> list[Reference]:
    """Each live version of each place once. The registry names a logged directory and
    every file below it (a run's records, by digest alone): what lies below one of its
    directories is counted with that directory, not again."""
    trees = [r for r in refs if r.source == liveness.REGISTRY and r.is_tree]
    below: set[str] = set()
    for tree in trees:
        below |= liveness.expand([tree], read).oids - {tree.oid}
    return [r for r in refs if r.source != liveness.REGISTRY or r.oid not in below]


class _Measure:
    """(files, bytes) of a reference: from its pointer when it says, else from the
    object's size or its manifest (registry references carry no size). What neither the
    cache nor the remote holds counts as nothing."""

    def __init__(self, odb: ObjectDB, remote: ObjectDB | None) -> None:
        self.odb, self.remote = odb, remote
        self.read = manifest_reader(odb, remote)
        self.trees: dict[str, tuple[int, int]] = {}

    def __call__(self, ref: Reference) -> tuple[int, int]:
        if ref.size or ref.nfiles is not None:
            return (ref.nfiles if ref.nfiles is not None else 1), ref.size
        if ref.is_tree:
            return self.tree(ref.oid)
        return 1, self.object_size(ref.oid)

    def tree(self, oid: str) -> tuple[int, int]:
        if oid not in self.trees:
            self.trees[oid] = (0, 0)  # a manifest naming itself cannot loop
            entries = self.read(oid) or []
            files = sum(self.tree(e.digest)[0] if e.is_dir else 1 for e in entries)
            self.trees[oid] = (files, sum(e.size for e in entries))
        return self.trees[oid]

    def object_size(self, oid: str) -> int:
        for store in (self.odb, self.remote):
            if store is None:
                continue
            try:
                return store.size(oid)
            except NotFoundError:
                continue
        return 0


def cache_usage(odb: ObjectDB) -> StoreUsage:
    count = total = 0
    for oid in odb.list_oids():
        try:
            total += odb.size(oid)
        except NotFoundError:
            continue  # removed by a gc running beside us
        count += 1
    return StoreUsage(CACHE, count, total)


def remote_usage(store: ObjectDB, jobs: int) -> StoreUsage:
    sizes = store.sizes(None, jobs)
    return StoreUsage(store.name, len(sizes), sum(sizes.values()))
