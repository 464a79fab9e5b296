"""`cairn du`: what the tracked data would take without dedup, and what it takes.

Logical size is the sum of the outs' sizes in the workspace's pointer files and the
cached outs of its cairn.lock files. Stored size
is the unique objects in a store and their bytes, manifests and unreferenced objects
included (`cairn gc` reclaims those). A reader: it takes no lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cairn.errors import NotFoundError
from cairn.lifecycle import liveness
from cairn.objects.odb import ObjectDB
from cairn.project.context import ProjectContext
from cairn.remotes.connect import open_remote

CACHE = "cache"


@dataclass(frozen=True)
class StoreUsage:
    store: str  # "cache", or the remote's name
    objects: int
    bytes: int


@dataclass
class DiskUsage:
    outs: int = 0  # tracked files and directories
    files: int = 0  # tracked files, counting those inside directories
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
    """Logical size of the workspace's tracked data vs what the cache (and `remote`) store."""
    usage = DiskUsage()
    workspace = liveness.Scope(purpose="du")
    for ref in liveness.in_scope(project, workspace):
        usage.outs += 1
        usage.files += ref.nfiles if ref.nfiles is not None else 1
        usage.logical_bytes += ref.size
    usage.stores.append(cache_usage(project.odb))
    if remote is not None:
        store = open_remote(project.config, remote)
        usage.stores.append(remote_usage(store, jobs or project.jobs))
    return usage


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
