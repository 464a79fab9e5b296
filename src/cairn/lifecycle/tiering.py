"""`cairn tier apply`: what only Archived model versions need goes to the cold remote,
and comes back to the hot one when a version is promoted again.

Cold-eligible are the objects below the manifests of model versions whose stage is
Archived and that no alias names (an alias is a live pointer someone loads), and the
package files built from them — minus everything anything else in gc's scope references
(`liveness.in_scope` with the workspace, pipeline locks and git revisions asked for, the
other versions, the runs that are not wholly Archived, and the other packages). A run
all of whose registered versions are Archived goes cold with them: its model artifact
is the version's digest, and nothing else of its lineage keeps those objects hot.
Directory manifests stay hot whatever they belong to: they are small, and gc, fsck and
this plan read them to learn what a directory holds, which an archived storage class
would make them wait hours for.

The plan: to cold, the eligible objects the hot remote holds; to hot, the objects the
cold remote holds that are referenced and not eligible (a version promoted again). The
dry run prints exactly it. Each object moves in this order: copied to the destination
(its bytes hashed on the way: only bytes that hash to its name arrive), confirmed there
(its size; a copy that was there already is re-hashed where it can be read), recorded in
the remote index, and only then removed from the source. A kill at any point leaves
every object on one remote at least, and a rerun finishes the move. Moving back an
object an archived storage class holds (S3 GLACIER, DEEP_ARCHIVE) requests its restore
and reports it pending, with when to run again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from cairn.config import Config
from cairn.errors import CairnError, ConfigError, NotFoundError, ObjectArchived, UserError
from cairn.lifecycle import liveness
from cairn.lifecycle.gc import WORKSPACE_ONLY, gc_scope
from cairn.lifecycle.liveness import REGISTRY, LiveObjects, Reference
from cairn.objects.backend_errors import needs_restore
from cairn.objects.odb import ObjectDB
from cairn.objects.transfer import transfer
from cairn.objects.tree import TreeEntry
from cairn.project.context import ProjectContext
from cairn.project.revisions import RevisionScope
from cairn.remotes.connect import RemoteConfig, configured_remote
from cairn.remotes.index import RemoteIndex
from cairn.remotes.tiers import COLD, cold_remotes, request_restore
from cairn.store.entities import ModelVersion

ARCHIVED = "Archived"
BATCH = 256  # objects copied, then removed from the source, at a time


@dataclass
class TierResult:
    hot: str
    cold: str
    scope: str
    dry_run: bool
    versions: list[str] = field(default_factory=list)  # "fraud v1": Archived, cold-eligible
    to_cold: dict[str, int] = field(default_factory=dict)  # oid → bytes, leaving the hot one
    to_hot: dict[str, int] = field(default_factory=dict)  # oid → bytes, leaving the cold one
    paths: dict[str, str] = field(default_factory=dict)  # oid → where it is used, if known
    moved_to_cold: list[str] = field(default_factory=list)
    moved_to_hot: list[str] = field(default_factory=list)
    pending: dict[str, str] = field(default_factory=dict)  # oid → its restore, requested
    failed: dict[str, str] = field(default_factory=dict)  # oid → why it did not move

    @property
    def bytes_to_cold(self) -> int:
        return sum(self.to_cold.values())

    @property
    def bytes_to_hot(self) -> int:
        return sum(self.to_hot.values())

    def to_dict(self) -> dict[str, object]:
        return {"hot": self.hot, "cold": self.cold, "scope": self.scope,
                "dry_run": self.dry_run, "versions": self.versions, "to_cold": self.to_cold,
                "to_hot": self.to_hot, "bytes_to_cold": self.bytes_to_cold,
                "bytes_to_hot": self.bytes_to_hot, "paths": self.paths,
                "moved_to_cold": self.moved_to_cold, "moved_to_hot": self.moved_to_hot,
                "pending": self.pending, "failed": self.failed}

    def raise_for_failures(self) -> None:
        """One error for objects that could not move (pending restores are not failures)."""
        if not self.failed:
            return
        oid, why = next(iter(self.failed.items()))
        more = f" (and {len(self.failed) - 1} more)" if len(self.failed) > 1 else ""
        raise CairnError(f"{len(self.failed)} object(s) did not move, e.g. {oid}{more}: {why}; "
                         "each is still on the remote it was on — fix that and rerun "
                         "`cairn tier apply`")


def tier_apply(project: ProjectContext, revisions: RevisionScope = WORKSPACE_ONLY, *,
               hot: str | None = None, cold: str | None = None, dry_run: bool = False,
               jobs: int | None = None) -> TierResult:
    """Move the objects only Archived versions need to the cold remote, and back those
    that a version promoted again needs; `dry_run`: only say what would move."""
    jobs = jobs or project.jobs
    with project.lock():
        hot_remote = _hot_remote(project.config, hot)
        cold_remote = _cold_remote(project.config, cold)
        hot_store, cold_store = hot_remote.connect(), cold_remote.connect()
        result = TierResult(hot_store.name, cold_store.name, revisions.describe(), dry_run)
        _plan(project, revisions, hot_store, cold_store, jobs, result)
        if not dry_run:
            _apply(project, hot_store, cold_store, cold_remote.restore_days, jobs, result)
    return result


def _hot_remote(config: Config, name: str | None) -> RemoteConfig:
    found = configured_remote(config, name, "tier apply")
    if found.tier == COLD:
        raise UserError(f"remote {found.name!r} is marked tier = \"cold\"; tier apply moves "
                        "objects between a hot remote and it — pass the hot one with -r NAME")
    return found


def _cold_remote(config: Config, name: str | None) -> RemoteConfig:
    if name:
        found = configured_remote(config, name)
        if found.tier != COLD:
            raise ConfigError(f"remote {name!r} is not marked cold; mark it with "
                              f"`cairn remote modify {name} tier cold`")
        return found
    colds = cold_remotes(config)
    if not colds:
        raise ConfigError("no remote is marked tier = \"cold\"; add one (`cairn remote add "
                          "cold s3://BUCKET/cold`, `cairn remote modify cold tier cold`, "
                          "`cairn remote modify cold storage_class GLACIER`)")
    if len(colds) > 1:
        raise UserError(f"several remotes are marked cold ({', '.join(c.name for c in colds)}); "
                        "pass the one to use with --cold NAME")
    return colds[0]


# -- the plan ----------------------------------------------------------------------------

def _plan(project: ProjectContext, revisions: RevisionScope, hot: ObjectDB, cold: ObjectDB,
          jobs: int, result: TierResult) -> None:
    versions = list(_all_versions(project)) if project.has_store() else []
    archived = [v for v in versions if v.current_stage == ARCHIVED and not v.aliases]
    keys = {(v.name, v.version) for v in archived}
    result.versions = [f"{v.name} v{v.version}" for v in archived]
    read = _ManifestReader(project.odb, hot, cold)
    live = _expanded(liveness.in_scope(project, gc_scope(revisions), [
        liveness.workspace_pointers, liveness.pipeline_locks,
        liveness.registry_without_versions(keys, _wholly_archived_runs(versions, keys)),
        liveness.packages_without_versions(keys)]), read, hot, cold)
    # What cannot be read below an Archived version cannot move: nothing to refuse for.
    going = liveness.expand(_cold_references(project, archived, keys), read, with_paths=True)
    every_version = liveness.expand([_version_ref(v) for v in versions if v.digest], read,
                                    with_paths=True)  # for the paths shown
    eligible = going.oids - live.oids - read.manifests
    referenced = live.oids | going.oids
    result.to_cold = hot.sizes(eligible, jobs) if eligible else {}
    result.to_hot = {oid: size for oid, size in cold.sizes(None, jobs).items()
                     if oid in referenced and oid not in eligible}
    for found in (every_version, going, live):
        for oid, paths in found.paths.items():
            if oid in result.to_cold or oid in result.to_hot:
                result.paths.setdefault(oid, min(p.lstrip("/") for p in paths))


def _all_versions(project: ProjectContext) -> Iterator[ModelVersion]:
    token = None
    while True:
        page = project.store.search_model_versions("", 10000, None, token)
        yield from page
        token = page.token
        if not token:
            return


def _wholly_archived_runs(versions: Sequence[ModelVersion], keys: set[tuple[str, int]]
                          ) -> set[str]:
    """Runs every one of whose registered versions goes cold: their lineage goes too."""
    runs: dict[str, bool] = {}
    for v in versions:
        if v.run_id:
            runs[v.run_id] = runs.get(v.run_id, True) and (v.name, v.version) in keys
    return {run for run, cold in runs.items() if cold}


def _version_ref(v: ModelVersion) -> Reference:
    return Reference(v.digest, True, f"models:/{v.name}/{v.version}", REGISTRY)


def _cold_references(project: ProjectContext, archived: Sequence[ModelVersion],
                     keys: set[tuple[str, int]]) -> list[Reference]:
    refs = [_version_ref(v) for v in archived if v.digest]
    if keys:
        refs += [Reference(p.object_id, False, f"package {p.name} v{p.version}", REGISTRY,
                           p.size)
                 for p in project.store.list_packages() if (p.name, p.version) in keys]
    return refs


class _ManifestReader:
    """Manifests from the cache, else the hot remote, else the cold one (read once); the
    ones read are `manifests`, which stay hot."""

    def __init__(self, odb: ObjectDB, hot: ObjectDB, cold: ObjectDB) -> None:
        self._readers = [liveness.manifest_reader(odb, hot), liveness.manifest_reader(odb, cold)]
        self._read: dict[str, list[TreeEntry] | None] = {}
        self.manifests: set[str] = set()

    def __call__(self, oid: str) -> list[TreeEntry] | None:
        if oid not in self._read:
            self._read[oid] = self._first(oid)
            if self._read[oid] is not None:
                self.manifests.add(oid)
        return self._read[oid]

    def _first(self, oid: str) -> list[TreeEntry] | None:
        for read in self._readers:
            try:
                entries = read(oid)
            except Exception as e:  # a manifest another tool put in an archived class
                if isinstance(e, ObjectArchived) or needs_restore(e):
                    continue
                raise
            if entries is not None:
                return entries
        return None


def _expanded(refs: Sequence[Reference], read: _ManifestReader, hot: ObjectDB,
              cold: ObjectDB) -> LiveObjects:
    """What the live `refs` name; a manifest nobody has stops the plan, which could not
    tell whether an object below it must stay hot."""
    found = liveness.expand(refs, read, with_paths=True)
    if found.unseen_trees:
        oid, ref = next(iter(found.unseen_trees.items()))
        more = f" (and {len(found.unseen_trees) - 1} more)" if len(found.unseen_trees) > 1 else ""
        raise NotFoundError(f"cannot read the manifest {oid} of {ref.describe()}{more} from the "
                            f"cache or remotes {hot.name!r} and {cold.name!r}, so tier apply "
                            "cannot tell what is inside it; fetch or push it first, or narrow "
                            "the scope")
    return found


# -- moving ------------------------------------------------------------------------------

def _apply(project: ProjectContext, hot: ObjectDB, cold: ObjectDB, restore_days: int,
           jobs: int, result: TierResult) -> None:
    index = project.remote_index()
    try:
        for batch in _batches(sorted(result.to_cold)):
            done, errors = _move(hot, cold, batch, result.to_cold, jobs)
            _forget_source(index, hot, cold, done)
            result.moved_to_cold += done
            result.failed.update({oid: str(e) for oid, e in errors.items()})
        for batch in _batches(sorted(result.to_hot)):
            done, errors = _move(cold, hot, batch, result.to_hot, jobs)
            _forget_source(index, cold, hot, done)
            result.moved_to_hot += done
            _pending(cold, errors, restore_days, result)
    finally:
        index.close()


def _batches(oids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(oids), BATCH):
        yield oids[start:start + BATCH]


def _move(src: ObjectDB, dst: ObjectDB, oids: list[str], sizes: dict[str, int], jobs: int
          ) -> tuple[list[str], dict[str, CairnError]]:
    """Copy `oids` to `dst` (hashed on the way) and confirm each there: (the confirmed
    ones, why the others are not)."""
    copied = transfer(src, dst, oids, jobs)
    errors: dict[str, CairnError] = dict(copied.failed)
    present = [oid for oid in oids if oid not in errors and oid not in copied.transferred]
    bad = [oid for oid in present if not _verifies(dst, oid)]
    if bad:  # a corrupt copy there (of another tool, or a disk): replace it from `src`
        errors.update(transfer(src, dst, bad, jobs, replace=bad).failed)
    held = dst.sizes([oid for oid in oids if oid not in errors], jobs)
    for oid in oids:
        if oid not in errors and held.get(oid) != sizes[oid]:
            errors[oid] = CairnError(f"{dst.label} holds {held.get(oid)} bytes for object "
                                     f"{oid}, not {sizes[oid]}")
    return [oid for oid in oids if oid not in errors], errors


def _verifies(store: ObjectDB, oid: str) -> bool:
    """Whether the copy at `store` hashes to `oid`; an archived one cannot be read, and
    its size (checked next) is what there is to go by."""
    try:
        return store.verify(oid)
    except ObjectArchived:
        return True
    except NotFoundError:
        return False


def _forget_source(index: RemoteIndex, src: ObjectDB, dst: ObjectDB, done: list[str]
                   ) -> None:
    """`done` are confirmed at `dst`: recorded, then removed from `src`."""
    if not done:
        return
    index.verified(dst.url, done)
    index.forget(src.url, done)  # before: a crash between must not leave it believed
    src.remove(done)


def _pending(cold: ObjectDB, failed: dict[str, CairnError], restore_days: int,
             result: TierResult) -> None:
    for oid, error in failed.items():
        if isinstance(error, ObjectArchived):
            result.pending[oid] = str(request_restore(cold, oid, restore_days,
                                                      result.paths.get(oid)))
        else:
            result.failed[oid] = str(error)
