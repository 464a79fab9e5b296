"""Moving the objects of tracked outs between the cache and a remote, and comparing them.

Which outs is the caller's question (`cairn.commands.data` asks `cairn.lifecycle.liveness`);
here, for a directory, every object below its manifest comes along. Pushing reads
manifests from the cache; fetching learns a directory level by level, fetching each
manifest before the objects it names (objects are installed atomically, so a manifest in
the cache always has whole bytes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from cairn.errors import (
    FormatError,
    IntegrityError,
    ObjectNotFound,
)
from cairn.objects import transfer
from cairn.objects.odb import ObjectDB
from cairn.objects.transfer import Progress, TransferResult, unique
from cairn.objects.tree import read_tree
from cairn.project.context import ProjectContext
from cairn.project.tracked import TrackedPath
from cairn.remotes.connect import RemoteConfig, configured_remote, open_remote, url_scheme
from cairn.remotes.index import RemoteIndex
from cairn.remotes.settings import check_local_location
from cairn.remotes.tiers import ColdRemote, cold_remotes, fetch_trees, open_cold


def push(project: ProjectContext, outs: Iterable[TrackedPath], remote: str | None = None,
         jobs: int | None = None, progress: Progress | None = None,
         on_total: Callable[[int], None] | None = None) -> TransferResult:
    """Upload every object of `outs` (directories followed down) that the remote lacks.

    When this clone knows the remote has every one of them (it pushed, fetched or saw
    them there), the remote is not asked at all; otherwise it is asked about all.
    Objects this clone found corrupt there (`cairn fsck -r`, a failed fetch) are
    uploaded over the bad copies when the cache has them, whatever the outs. Objects a
    cold remote holds (`cairn tier apply` moved them there) are not sent again.
    """
    found = configured_remote(project.config, remote)
    if not url_scheme(found.url):  # a remote once stored as '..' must not fill the workspace
        check_local_location(found.url, found.url, project.config.dot_dir, found.name)
    oids = unique(objects_of(project.odb, outs))
    cold = cold_remotes(project.config, besides=[found.name])
    index = project.remote_index()
    try:
        damaged = index.damaged(found.url)
        repairable = any(project.odb.exists(oid) for oid in damaged)
        tiered = set().union(*(index.present(c.url) for c in cold))
        wanted = [oid for oid in oids if oid not in tiered]
        if oids and not repairable and index.has_all(found.url, wanted):
            return TransferResult(present=len(oids), unrepaired=sorted(damaged))
        store = found.connect()
        jobs = transfer_jobs(project, store, jobs)
        if cold:
            wanted = _not_on_cold(wanted, store, cold, index, jobs)
        result = transfer.transfer(project.odb, store, wanted, jobs, progress, on_total,
                                   replace=damaged)
        result.present += len(oids) - len(wanted)
        index.add(found.url, (oid for oid in wanted if oid not in result.failed))
        index.verified(found.url, result.transferred)  # hashed on the way: good bytes
        return result
    finally:
        index.close()


def _not_on_cold(oids: list[str], store: ObjectDB, cold: list[RemoteConfig],
                 index: RemoteIndex, jobs: int) -> list[str]:
    """`oids` but those that `store` lacks and a cold remote holds."""
    lacking = set(oids) - store.exists_many(oids, jobs)
    on_cold: set[str] = set()
    for remote in cold:
        if not lacking - on_cold:
            break
        held = remote.connect().exists_many(lacking - on_cold, jobs)
        index.add(remote.url, held)
        on_cold |= held
    return [oid for oid in oids if oid not in on_cold]


def fetch(project: ProjectContext, outs: Iterable[TrackedPath], remote: str | None = None,
          jobs: int | None = None, progress: Progress | None = None,
          on_total: Callable[[int], None] | None = None) -> TransferResult:
    """Download every object of `outs` (directories level by level) the cache lacks,
    what the remote lacks from the cold remotes (archived ones: restores requested)."""
    found = configured_remote(project.config, remote)
    store = found.connect()
    cold = open_cold(project.config, besides=[found.name])
    index = project.remote_index()
    try:
        with project.lock():
            return fetch_outs(project.odb, store, outs, transfer_jobs(project, store, jobs),
                              progress, on_total, index, cold, found.restore_days)
    finally:
        index.close()


def transfer_jobs(project: ProjectContext, store: ObjectDB, jobs: int | None) -> int:
    return max(1, jobs or store.jobs or project.jobs)


# -- which objects ---------------------------------------------------------------------


def objects_of(odb: ObjectDB, outs: Iterable[TrackedPath]) -> Iterator[str]:
    """Every object the outs name, as far as the cache's manifests tell."""
    seen: set[str] = set()
    for out in outs:
        yield out.digest
        if out.is_dir:
            yield from (oid for oid, _ in tree_objects(odb, out.digest, seen))


def tree_objects(odb: ObjectDB, root: str, seen: set[str]) -> Iterator[tuple[str, int]]:
    """(oid, size) of everything below manifest `root`, skipping manifests in `seen`.

    Manifests missing from the cache or unreadable are not followed: a push reports
    them when it tries to send them, a status counts them as not in the cache.
    """
    stack = [root]
    while stack:
        tree = stack.pop()
        if tree in seen:
            continue
        seen.add(tree)
        try:
            entries = read_tree(odb, tree)
        except (ObjectNotFound, IntegrityError, FormatError):
            continue
        for entry in entries:
            if entry.is_dir:
                stack.append(entry.digest)
                yield entry.digest, _cached_size(odb, entry.digest)
            else:
                yield entry.digest, entry.size


def _cached_size(odb: ObjectDB, oid: str) -> int:
    try:
        return odb.size(oid)
    except ObjectNotFound:
        return 0


# -- fetching ---------------------------------------------------------------------------


def fetch_outs(odb: ObjectDB, store: ObjectDB, outs: Iterable[TrackedPath], jobs: int,
               progress: Progress | None = None,
               on_total: Callable[[int], None] | None = None,
               index: RemoteIndex | None = None, cold: Sequence[ColdRemote] = (),
               restore_days: int | None = None) -> TransferResult:
    """Fetch outs level by level: manifests first, then what each one names; what
    `store` lacks from the `cold` remotes (`cairn.remotes.tiers.fetch_trees`).

    `on_total` hears of each level's count as it becomes known, so the total grows.
    """

    def learn(fetched: TransferResult) -> None:
        if index is None:
            return
        index.verified(store.url, [o for o in fetched.transferred if o not in fetched.via])
        for oid, url in fetched.via.items():
            index.verified(url, [oid])
        # Only the remote's bytes fail a download's hash check: a push replaces them.
        index.mark_damaged(store.url, [oid for oid, e in fetched.failed.items()
                                       if isinstance(e, IntegrityError)])

    outs = list(outs)
    return fetch_trees(store, odb, [(out.digest, out.is_dir) for out in outs], cold=cold,
                       restore_days=restore_days, jobs=jobs, progress=progress,
                       on_total=on_total, on_level=learn,
                       labels={out.digest: out.path for out in outs})


# -- status --cloud ---------------------------------------------------------------------


@dataclass
class CloudOutStatus:
    path: str  # relative to the repository root
    objects: int = 0
    not_on_remote: int = 0  # in the cache only: `cairn push` sends them
    bytes_not_on_remote: int = 0
    not_in_cache: int = 0  # on the remote only: `cairn pull` fetches them
    missing: int = 0  # in neither

    @property
    def state(self) -> str:
        if self.missing:
            return "missing"
        if self.not_on_remote:
            return "new"
        if self.not_in_cache:
            return "not in cache"
        return "in sync"

    def to_dict(self) -> dict[str, object]:
        return {"path": self.path, "state": self.state, "objects": self.objects,
                "not_on_remote": self.not_on_remote,
                "bytes_not_on_remote": self.bytes_not_on_remote,
                "not_in_cache": self.not_in_cache, "missing": self.missing}


@dataclass
class CloudStatus:
    remote: str
    outs: list[CloudOutStatus] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        return all(o.state == "in sync" for o in self.outs)


def cloud_status(project: ProjectContext, outs: Iterable[TrackedPath], remote: str | None = None,
                 jobs: int | None = None) -> CloudStatus:
    """Per tracked out (its `path` relative to the project root): which of its objects
    the remote lacks."""
    store = open_remote(project.config, remote)
    odb = project.odb
    per_out: list[tuple[str, dict[str, int]]] = []
    for out in outs:
        sizes = {out.digest: out.size if not out.is_dir else _cached_size(odb, out.digest)}
        if out.is_dir:
            sizes.update(tree_objects(odb, out.digest, set()))
        per_out.append((out.path, sizes))
    every = {oid for _, sizes in per_out for oid in sizes}
    on_remote = store.exists_many(every, transfer_jobs(project, store, jobs))
    index = project.remote_index()  # a live answer: correct what this clone knew
    index.add(store.url, on_remote)
    index.forget(store.url, every - on_remote)
    index.close()
    result = CloudStatus(store.name)
    for rel, sizes in per_out:
        result.outs.append(_out_status(rel, sizes, odb, on_remote))
    return result


def _out_status(rel: str, sizes: dict[str, int], odb: ObjectDB, on_remote: set[str]
                ) -> CloudOutStatus:
    status = CloudOutStatus(rel, objects=len(sizes))
    for oid, size in sizes.items():
        cached = odb.exists(oid)
        if oid in on_remote:
            status.not_in_cache += not cached
        elif cached:
            status.not_on_remote += 1
            status.bytes_not_on_remote += size
        else:
            status.missing += 1
    return status
