"""`cairn fsck`: re-hash every object and set corrupt ones aside.

Every object in the cache is hashed again, read-only ones included (root, or a tool
that ignores permissions, can still change them). A corrupt cache object is moved to
quarantine, so nothing links it and `cairn pull` fetches a good copy in its place.
Manifests the workspace names must also parse. With a remote, its objects are streamed
and hashed too; corrupt ones are reported, never deleted, and recorded in this clone's
remote index so that the next `cairn push` to that remote replaces them from the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import blake3

from cairn.errors import FormatError, IntegrityError, NotFoundError, ObjectArchived
from cairn.lifecycle import liveness
from cairn.objects.backend_errors import needs_restore
from cairn.objects.hashing import hash_file
from cairn.objects.odb import ObjectDB
from cairn.objects.parallel import run_parallel
from cairn.objects.tree import TreeEntry, decode_tree
from cairn.project.context import ProjectContext
from cairn.remotes.connect import open_remote

CHUNK = 1 << 20
CACHE = "cache"

Progress = Callable[[int], None]
T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Problem:
    oid: str
    store: str  # "cache", or the remote's name
    kind: str  # "corrupt" (bytes hash differently) or "bad manifest" (does not parse)
    detail: str
    paths: tuple[str, ...] = ()  # tracked paths that use the object, where known
    quarantined: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"oid": self.oid, "store": self.store, "kind": self.kind, "detail": self.detail,
                "paths": list(self.paths), "quarantined": self.quarantined}


@dataclass
class FsckResult:
    checked: int = 0
    remote: str | None = None
    remote_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, object]:
        return {"checked": self.checked, "remote": self.remote,
                "remote_checked": self.remote_checked,
                "problems": [p.to_dict() for p in self.problems]}

    def raise_for_problems(self) -> None:
        if self.ok:
            return
        first = self.problems[0]
        raise IntegrityError(f"fsck found {len(self.problems)} bad object(s), e.g. {first.oid} "
                             f"({first.kind}, in {first.store}); {'; '.join(self._advice())}",
                             first.oid)

    def _advice(self) -> list[str]:
        quarantined = sum(p.quarantined for p in self.problems)
        on_remote = sum(p.store != CACHE and p.kind == "corrupt" for p in self.problems)
        manifests = sum(p.kind == "bad manifest" for p in self.problems)
        advice = []
        if quarantined:
            advice.append(f"{quarantined} moved to quarantine: run `cairn pull` to fetch good "
                          "copies")
        if on_remote:
            name = self.remote
            advice.append(f"{on_remote} corrupt on remote {name!r}, left in place: "
                          f"`cairn push -r {name}` replaces them from this cache if it has "
                          f"good copies, else run `cairn fsck -r {name}` then "
                          f"`cairn push -r {name}` in a clone that does")
        if manifests:
            advice.append(f"{manifests} manifest(s) cannot be read: upgrade Cairn, or re-add "
                          "the directory")
        return advice


@dataclass
class _Usage:
    """Which tracked paths use which objects, and which objects are manifests."""

    paths: dict[str, list[str]]
    manifests: set[str]

    def paths_of(self, oid: str) -> tuple[str, ...]:
        return tuple(sorted(set(self.paths.get(oid, ()))))


def fsck(project: ProjectContext, remote: str | None = None, jobs: int | None = None,
         progress: Progress | None = None) -> FsckResult:
    """Verify the cache (and the remote `remote`, if given); quarantine corrupt cache objects."""
    jobs = jobs or project.jobs
    result = FsckResult()
    usage = _workspace_usage(project)
    with project.lock():
        result.checked, corrupt = _check_cache(project.odb, jobs, progress)
        _quarantine(project, corrupt)
    result.problems += [Problem(oid, CACHE, "corrupt", f"bytes hash to {actual}",
                                usage.paths_of(oid), quarantined=True)
                        for oid, actual in corrupt.items()]
    result.problems += _check_manifests(project.odb, usage, set(corrupt))
    if remote is not None:
        store = open_remote(project.config, remote)
        result.remote = store.name
        result.remote_checked, problems = _check_remote(store, usage, jobs, progress)
        result.problems += problems
        index = project.remote_index()  # every object was checked: exactly these are bad
        try:
            index.set_damaged(store.url, (p.oid for p in problems if p.kind == "corrupt"))
        finally:
            index.close()
    return result


def _workspace_usage(project: ProjectContext) -> _Usage:
    manifests: set[str] = set()

    def read(oid: str) -> list[TreeEntry] | None:
        manifests.add(oid)
        try:
            return decode_tree(project.odb.read_bytes(oid), oid)
        except (NotFoundError, IntegrityError, FormatError):
            return None  # reported by the hash pass or _check_manifests

    found = liveness.expand(liveness.in_scope(project, liveness.Scope(purpose="fsck")), read,
                           with_paths=True)
    return _Usage(found.paths, manifests)


def _check_cache(odb: ObjectDB, jobs: int, progress: Progress | None
                 ) -> tuple[int, dict[str, str]]:
    """How many objects were hashed, and the corrupt ones → what their bytes hash to."""

    def check(oid: str) -> tuple[str, str]:
        try:
            actual = hash_file(odb.oid_to_path(oid))
        except FileNotFoundError:
            actual = oid  # gone since it was listed: nothing left to check
        if progress:
            progress(1)
        return oid, actual

    oids = list(odb.list_oids())
    corrupt = {oid: actual for oid, actual in _parallel(check, oids, jobs) if actual != oid}
    return len(oids), corrupt


def _quarantine(project: ProjectContext, oids: Iterable[str]) -> None:
    paths = []
    for oid in oids:
        paths.append(str(project.odb.oid_to_path(oid)))
        project.odb.quarantine(oid)
    # The stat cache must not vouch for whatever lands at these paths next.
    project.state.forget(paths)


def _check_manifests(odb: ObjectDB, usage: _Usage, corrupt: set[str]) -> list[Problem]:
    problems = []
    for oid in sorted(usage.manifests - corrupt):
        if not odb.exists(oid):
            continue  # not in the cache: `cairn status` says so, fsck has nothing to check
        try:
            decode_tree(odb.read_bytes(oid, verify=False), oid)
        except FormatError as e:
            problems.append(Problem(oid, CACHE, "bad manifest", str(e), usage.paths_of(oid)))
    return problems


def _check_remote(store: ObjectDB, usage: _Usage, jobs: int,
                  progress: Progress | None) -> tuple[int, list[Problem]]:
    def check(oid: str) -> Problem | None:
        problem = _check_remote_object(store, oid, oid in usage.manifests)
        if progress:
            progress(1)
        if problem is None:
            return None
        kind, detail = problem
        return Problem(oid, store.name, kind, detail, usage.paths_of(oid))

    oids = list(store.list_oids())
    return len(oids), [p for p in _parallel(check, oids, jobs) if p is not None]


def _check_remote_object(store: ObjectDB, oid: str,
                         is_manifest: bool) -> tuple[str, str] | None:
    hasher = blake3.blake3()
    kept = bytearray()  # manifests are small; keep their bytes to parse them
    try:
        with store.open(oid) as f:
            while chunk := f.read(CHUNK):
                hasher.update(chunk)
                if is_manifest:
                    kept += chunk
    except NotFoundError:
        return None  # removed since it was listed
    except Exception as e:  # S3 GLACIER: unreadable until restored, so not checked
        if isinstance(e, ObjectArchived) or needs_restore(e):
            return None
        raise
    actual = str(hasher.hexdigest())
    if actual != oid:
        return "corrupt", f"bytes hash to {actual}"
    if is_manifest:
        try:
            decode_tree(bytes(kept), oid)
        except FormatError as e:
            return "bad manifest", str(e)
    return None


def _parallel(work: Callable[[T], R], items: Iterable[T], jobs: int) -> Iterator[R]:
    """`work` over `items` on `jobs` threads, a bounded number in flight."""
    for _, outcome in run_parallel(work, items, jobs):
        assert not isinstance(outcome, BaseException)  # no per-item errors were asked for
        yield outcome
