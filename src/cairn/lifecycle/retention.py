"""`cairn retention apply`: delete old runs and the objects only they referenced.

The policy is config (`[retention.runs]`): runs that started more than `max_age` ago are
deleted unless one of these keeps them —
- a registered version names the run as its source (the store refuses to delete those:
  it would break the version's lineage);
- a version registered from the run ever reached a `keep_if_stage` stage, as the audit
  log remembers (even if that version was deleted since);
- the run carries a `keep_if_tagged` tag.

Objects go only when nothing else live names them: liveness's answer for gc's scope with
every git tag and branch (and with `all_commits`, every commit), the workspace, pipeline
locks, packages, the run cache, and the registry as if the expired runs were deleted.
The plan is made once and the apply deletes exactly it: runs first (soft-deleted, as
`cairn runs delete` does), then objects, remotes before the cache. A killed apply
resumes: runs deleted past the cutoff are expired again, so their objects are planned
again, and nothing live was ever in the plan.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from cairn.config import Config
from cairn.errors import CairnError, ConfigError, NotFoundError
from cairn.lifecycle import liveness
from cairn.lifecycle.gc import gc_scope
from cairn.lifecycle.liveness import Reference, manifest_reader
from cairn.objects.odb import ObjectDB
from cairn.project.context import ProjectContext
from cairn.project.revisions import RevisionScope
from cairn.remotes.connect import configured_remote, has_remote, open_remote
from cairn.remotes.settings import remote_list

if TYPE_CHECKING:
    from cairn.store.base import MetadataStore
    from cairn.store.entities import PagedList, Run

CACHE = "cache"
DEFAULT_KEEP_STAGES = ("Staging", "Production", "Archived")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
PAGE = 1000
DELETE_BATCH = 1000  # runs soft-deleted per transaction
T = TypeVar("T")


@dataclass(frozen=True)
class Policy:
    max_age: int  # seconds
    keep_if_stage: tuple[str, ...] = DEFAULT_KEEP_STAGES
    keep_if_tagged: tuple[str, ...] = ()
    max_age_text: str = ""  # as configured, for messages

    def describe(self) -> str:
        unless = ["registered"]
        if self.keep_if_stage:
            unless.append(f"a version of theirs reached {_either(self.keep_if_stage)}")
        if self.keep_if_tagged:
            unless.append(f"tagged {_either(self.keep_if_tagged)}")
        last = f"; or {unless[-1]}" if len(unless) > 1 else ""
        return (f"runs older than {self.max_age_text or f'{self.max_age}s'}, unless "
                f"{'; '.join(unless[:-1]) or unless[0]}{last}")


def _either(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def parse_duration(text: str, key: str) -> int:
    """Seconds in "90d", "12h", "4w", "30m", "45s"."""
    found = DURATION.match(text) if isinstance(text, str) else None
    if found is None:
        raise ConfigError(f"config key {key} takes a duration such as \"90d\", \"12h\" or "
                          f"\"4w\" (units s, m, h, d, w), not {text!r}")
    return int(found.group(1)) * UNITS[found.group(2)]


def policy_from_config(config: Config) -> Policy:
    """The `[retention.runs]` policy; a clear error when there is none or it is malformed."""
    max_age = config.get("retention.runs.max_age")
    if max_age is None:
        raise ConfigError("no retention policy: set how old a run may get, e.g. "
                          "`cairn config retention.runs.max_age 90d` (or [retention.runs] "
                          "max_age = \"90d\" in .cairn/config.toml)")
    stages = _names(config, "retention.runs.keep_if_stage", DEFAULT_KEEP_STAGES)
    tags = _names(config, "retention.runs.keep_if_tagged", ())
    return Policy(parse_duration(max_age, "retention.runs.max_age"), stages, tags,
                  str(max_age).strip())


def _names(config: Config, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
    value = config.get(key)
    if value is None:
        return default
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"config key {key} takes a list of names, e.g. [\"Production\"], "
                          f"not {value!r}")
    return tuple(value)


# -- the plan ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ExpiredRun:
    run_id: str
    experiment_id: str
    run_name: str
    start_time: int  # ms
    already_deleted: bool  # soft-deleted before (by a user, or an interrupted apply)


@dataclass
class RetentionResult:
    policy: str
    cutoff: int  # ms: runs that started before this are expired
    dry_run: bool
    scope: str
    runs: list[ExpiredRun] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)  # run id → why it is kept
    objects: dict[str, dict[str, int]] = field(default_factory=dict)  # place → oid → bytes
    skipped_runs: list[str] = field(default_factory=list)  # became a version's source meanwhile

    @property
    def runs_to_delete(self) -> list[ExpiredRun]:
        return [r for r in self.runs if not r.already_deleted]

    def bytes_freed(self, place: str) -> int:
        return sum(self.objects.get(place, {}).values())

    def to_dict(self) -> dict[str, object]:
        return {"policy": self.policy, "cutoff": self.cutoff, "dry_run": self.dry_run,
                "scope": self.scope,
                "runs": [{"run_id": r.run_id, "experiment_id": r.experiment_id,
                          "run_name": r.run_name, "start_time": r.start_time,
                          "already_deleted": r.already_deleted} for r in self.runs],
                "kept": self.kept, "skipped_runs": self.skipped_runs,
                "objects": {place: dict(sorted(found.items()))
                            for place, found in self.objects.items()},
                "bytes_freed": {place: self.bytes_freed(place) for place in self.objects}}


def apply(project: ProjectContext, policy: Policy | None = None, *, cloud: bool = False,
          remotes: Sequence[str] = (), all_commits: bool = False, dry_run: bool = False,
          jobs: int | None = None, now: float | None = None) -> RetentionResult:
    """Plan what the policy deletes and, unless `dry_run`, delete exactly that.

    `cloud`: also the remotes' copies — of `remotes`, or of every configured remote."""
    policy = policy or policy_from_config(project.config)
    jobs = jobs or project.jobs
    revisions = _revisions(project, all_commits)
    cutoff = int(((time.time() if now is None else now) - policy.max_age) * 1000)
    with project.lock():
        places = _open_places(project, cloud, remotes)
        result = RetentionResult(policy.describe(), cutoff, dry_run, revisions.describe())
        if project.has_store():
            _select_runs(project.store, policy, cutoff, result)
        _plan_objects(project, revisions, places, jobs, result)
        if not dry_run:
            _delete(project, places, result)
    return result


def _revisions(project: ProjectContext, all_commits: bool) -> RevisionScope:
    if project.git is None:
        return RevisionScope()  # no git history to keep
    return RevisionScope(all_tags=True, all_branches=True, all_commits=all_commits)


def _open_places(project: ProjectContext, cloud: bool, names: Sequence[str]
                 ) -> dict[str, ObjectDB]:
    """The cache, and with `cloud` each remote by name."""
    places = {CACHE: project.odb}
    if cloud:
        for name in names or [r.name for r in remote_list(project.config)]:
            places[name] = configured_remote(project.config, name).connect()
    return places


def _select_runs(store: MetadataStore, policy: Policy, cutoff: int,
                 result: RetentionResult) -> None:
    from cairn.store.base import ALL

    kept_by_versions = _kept_by_versions(store, policy)
    old = f"attributes.start_time < {cutoff}"
    for experiment in _paged(lambda token: store.search_experiments(ALL, PAGE, None, None,
                                                                     token)):
        ids = [experiment.experiment_id]
        for run in _paged(partial(_search_runs, store, ids, old)):
            info = run.info
            why = kept_by_versions.get(info.run_id) or _kept_by_tags(run, policy)
            if why:
                result.kept[info.run_id] = why
            else:
                result.runs.append(ExpiredRun(info.run_id, info.experiment_id, info.run_name,
                                              info.start_time,
                                              info.lifecycle_stage == "deleted"))


def _search_runs(store: MetadataStore, ids: list[str], filter_string: str,
                 token: str | None) -> PagedList[Run]:
    from cairn.store.base import ALL

    return store.search_runs(ids, filter_string, ALL, PAGE, None, token)


def _kept_by_versions(store: MetadataStore, policy: Policy) -> dict[str, str]:
    """Run id → why a version keeps it: it is the source of a registered version, or a
    version from it once reached a keep stage (the audit log outlives the version)."""
    why: dict[str, str] = {}
    for mv in _paged(lambda token: store.search_model_versions("", 10000, None, token)):
        if mv.run_id:
            why.setdefault(mv.run_id, f"source of {mv.name} v{mv.version}")
    if not policy.keep_if_stage:
        return why
    keep = set(policy.keep_if_stage)
    for model in _paged(lambda token: store.search_registered_models("", 1000, None, token)):
        run_of: dict[int, str] = {}
        reached: dict[int, str] = {}
        for entry in store.get_audit_log(model.name):
            if entry.version is None:
                continue
            run_id = entry.details.get("run_id") if entry.action == "register" else None
            if isinstance(run_id, str) and run_id:
                run_of[entry.version] = run_id
            if entry.action == "transition" and entry.to_value in keep:
                reached.setdefault(entry.version, entry.to_value)
        for version, stage in reached.items():
            if version in run_of:
                why[run_of[version]] = f"{model.name} v{version} reached {stage}"
    return why


def _kept_by_tags(run: Run, policy: Policy) -> str:
    tagged = [key for key in policy.keep_if_tagged if key in run.data.tags]
    return f"tagged {tagged[0]}" if tagged else ""


def _plan_objects(project: ProjectContext, revisions: RevisionScope,
                  places: dict[str, ObjectDB], jobs: int, result: RetentionResult) -> None:
    result.objects = {place: {} for place in places}
    if not result.runs:
        return
    expired = [r.run_id for r in result.runs]
    read = manifest_reader(project.odb, _manifest_remote(project, places))
    candidates = liveness.expand(_artifacts_of(project.store, expired), read).oids
    providers = (liveness.workspace_pointers, liveness.pipeline_locks,
                 liveness.registry_without(expired), liveness.packages,
                 liveness.run_cache_entries)
    live = liveness.expand(liveness.in_scope(project, gc_scope(revisions), providers), read)
    if live.unseen_trees:  # what hides below it might be one of ours: refuse to guess
        raise _unseen_tree_error(live.unseen_trees)
    doomed = candidates - live.oids
    for place, odb in places.items():
        result.objects[place] = odb.sizes(doomed, jobs) if doomed else {}


def _manifest_remote(project: ProjectContext, places: dict[str, ObjectDB]) -> ObjectDB | None:
    """Where manifests the cache lacks are read: a remote being cleaned, else the default."""
    opened = next((odb for place, odb in places.items() if place != CACHE), None)
    if opened is None and has_remote(project.config):
        return open_remote(project.config)
    return opened


def _unseen_tree_error(unseen: dict[str, Reference]) -> CairnError:
    oid, ref = next(iter(unseen.items()))
    more = f" (and {len(unseen) - 1} more)" if len(unseen) > 1 else ""
    return NotFoundError(f"cannot read the manifest {oid} of {ref.describe()}{more} from the "
                         "cache or the remotes, so retention cannot tell what is inside it; "
                         "fetch it first (`cairn fetch --all-tags --all-branches`), then "
                         "rerun; nothing was deleted")


def _artifacts_of(store: MetadataStore, run_ids: Sequence[str]) -> list[Reference]:
    return [Reference(d, is_dir, "", "expired runs")
            for d, is_dir in store.digests_of_runs(run_ids).items()]


def _delete(project: ProjectContext, places: dict[str, ObjectDB],
            result: RetentionResult) -> None:
    expired = [run.run_id for run in result.runs_to_delete]
    for start in range(0, len(expired), DELETE_BATCH):
        # Registered from while we planned: it stays, and so must what it names.
        result.skipped_runs += project.store.delete_runs(expired[start:start + DELETE_BATCH])
    if result.skipped_runs:
        still_named = liveness.expand(_artifacts_of(project.store, result.skipped_runs),
                                      manifest_reader(project.odb)).oids
        for found in result.objects.values():
            for oid in still_named & found.keys():
                del found[oid]
    # Remotes first: if one fails half way, the cache still holds a copy.
    for place, odb in places.items():
        doomed = result.objects.get(place)
        if place == CACHE or not doomed:
            continue
        index = project.remote_index()
        index.forget(odb.url, doomed)  # before: a crash between must not leave it believed
        index.close()
        odb.remove(list(doomed))
    cached = result.objects.get(CACHE, {})
    project.odb.remove(cached)
    # A later object at a reused inode must not inherit this one's verified digest.
    project.state.forget(project.odb.oid_to_path(oid) for oid in cached)


def _paged(fetch: Callable[[str | None], PagedList[T]]) -> Iterator[T]:
    token = None
    while True:
        page = fetch(token)
        yield from page
        token = page.token
        if not token:
            return
