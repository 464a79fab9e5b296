"""The data operations: add, commit, checkout, status, push, fetch, pull, gc, retention,
fsck, du, get, unprotect — as the CLI, the git hooks and the server call them.

Each opens the project (`root`, default: found from the working directory), does one
thing and returns a result object; nothing is printed. What push, fetch, gc, fsck, du and
`status --cloud` cover is `cairn.lifecycle.liveness`'s answer for their scope.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from cairn.commands._context import opened, project_here
from cairn.errors import CairnError, UserError
from cairn.project.context import ProjectContext
from cairn.project.revisions import RevisionScope
from cairn.project.tracked import TrackedPath

if TYPE_CHECKING:
    from cairn.lifecycle.du import DiskUsage
    from cairn.lifecycle.fsck import FsckResult
    from cairn.lifecycle.gc import GcResult
    from cairn.lifecycle.liveness import Provider, Reference, Scope
    from cairn.lifecycle.retention import RetentionResult
    from cairn.objects.transfer import TransferResult
    from cairn.pipeline.runcache_remote import RunCacheTransfer
    from cairn.workspace.add import AddResult
    from cairn.workspace.checkout import CheckoutResult
    from cairn.workspace.get import GetResult
    from cairn.workspace.init import InitResult
    from cairn.workspace.status import OutStatus
    from cairn.workspace.sync import CloudStatus

Progress = Callable[[int], None]


def _tracked() -> tuple[Provider, ...]:
    """The providers of tracked outs: what the workspace and git name (not the registry)."""
    from cairn.lifecycle import liveness

    return (liveness.workspace_pointers, liveness.pipeline_locks)


# -- the workspace ----------------------------------------------------------------------

def init(root: Path, *, no_scm: bool = False, hooks: bool = True) -> InitResult:
    """Make `root` a Cairn project (running it twice is harmless)."""
    from cairn.workspace.init import init as do_init

    return do_init(root, no_scm=no_scm, hooks=hooks)


def install_hooks(*, root: Path | None = None) -> list[str]:
    """Install the git hooks; the names of hooks of the user's own that were left alone."""
    from cairn.scm.hooks import install_hooks as do_install

    with opened(root) as project:
        if project.git_root is None:
            raise UserError(f"{project.root} is not in a git repository; hooks need git")
        return do_install(project.git_root)


def add(paths: Iterable[str], *, root: Path | None = None,
        progress: Progress | None = None) -> AddResult:
    from cairn.workspace.add import add as do_add

    with opened(root) as project:
        return do_add(project, tuple(paths), progress)


def commit(targets: Iterable[str] = (), *, root: Path | None = None) -> list[Path]:
    """Pointer files rewritten with the current content of their outs."""
    from cairn.workspace.add import commit as do_commit

    with opened(root) as project:
        return do_commit(project, tuple(targets))


def checkout(targets: Iterable[str] = (), *, force: bool = False, verify: bool = False,
             root: Path | None = None, progress: Progress | None = None) -> CheckoutResult:
    from cairn.workspace.checkout import checkout as do_checkout

    with opened(root) as project:
        return do_checkout(project, tuple(targets), force, progress, verify=verify)


@dataclass
class StatusResult:
    changed: list[OutStatus]  # tracked outs that differ from their pointer file or lock
    stages: list[StageChange] = field(default_factory=list)  # what repro would run
    pipeline_error: CairnError | None = None  # the pipeline could not be read


@dataclass(frozen=True)
class StageChange:
    stage: str
    reasons: list[str]


def status(targets: Iterable[str] = (), *, root: Path | None = None) -> StatusResult:
    """Changed tracked outs and, without targets, the stages `repro` would run; a pipeline
    that cannot be read is reported (in the result), not raised, so the data status
    still shows."""
    from cairn.pipeline.repro import stages_to_run
    from cairn.workspace.status import status as do_status

    targets = tuple(targets)
    with opened(root) as project:
        result = StatusResult([s for s in do_status(project, targets)
                               if s.state != "unchanged"])
        if not targets:
            try:
                result.stages = [StageChange(r.stage, r.reasons)
                                 for r in stages_to_run(project)]
            except CairnError as e:
                result.pipeline_error = e
    return result


def get(repo: str | None, path: str, *, rev: str | None = None, out: str | None = None,
        remote: str | None = None, force: bool = False) -> GetResult:
    """Copy `path`, tracked in `repo` (None or "." here, a path or a git URL), as of `rev`,
    to `out` (default: its name, in the working directory)."""
    from cairn.workspace.get import get as do_get

    return do_get(project_here(), repo, path, rev, out, remote, force)


@contextmanager
def open_artifact(path: str, *, repo: str | None = None, rev: str | None = None,
                  remote: str | None = None) -> Iterator[IO[bytes]]:
    """A binary file of the verified bytes of `path` in `repo` as of `rev` (`cairn.api`)."""
    from cairn.workspace.get import open_artifact as do_open

    with do_open(project_here(), path, repo, rev, remote) as f:
        yield f


def unprotect(paths: Iterable[str], *, root: Path | None = None) -> list[str]:
    from cairn.workspace.protect import unprotect as do_unprotect

    with opened(root) as project:
        return list(do_unprotect(project, tuple(paths)))


# -- remotes ----------------------------------------------------------------------------

@dataclass
class PushResult:
    remote: str
    transferred: TransferResult
    run_cache: RunCacheTransfer | None = None
    warnings: list[str] = field(default_factory=list)


def push(targets: Iterable[str] = (), *, remote: str | None = None, jobs: int | None = None,
         revs: Iterable[str] = (), all_tags: bool = False, all_branches: bool = False,
         all_commits: bool = False, commits: Iterable[str] = (), run_cache: bool = False,
         root: Path | None = None, progress: Progress | None = None,
         on_total: Progress | None = None) -> PushResult:
    """Upload what is live in scope that the remote lacks: the tracked outs of the
    workspace (narrowed to `targets`) and of the revisions and `commits` asked for, and,
    without targets, registered model versions and live runs' artifacts, so another
    clone sharing the tracking database can load them (those this cache lacks are left
    to the clone that has them)."""
    from cairn.lifecycle.liveness import Scope

    targets = tuple(targets)
    scope = Scope(targets, _revisions(revs, all_tags, all_branches, all_commits),
                  tuple(commits), registry=not targets, purpose="push")
    with opened(root) as project:
        outs, warnings = _live_outs(project, scope)
        from cairn.workspace.sync import push as push_outs

        result = PushResult(remote or str(project.config.get("core.remote")),
                            push_outs(project, outs, remote, jobs, progress, on_total),
                            warnings=warnings)
        if run_cache:
            from cairn.pipeline import runcache_remote

            result.run_cache = runcache_remote.push(project, remote, jobs, progress)
    return result


def _live_outs(project: ProjectContext, scope: Scope) -> tuple[list[TrackedPath], list[str]]:
    """The outs to send for `scope`: tracked ones always (a missing object is a failure),
    the registry's when this cache has them. A metadata store that cannot be read is a
    warning: the tracked data still goes."""
    from cairn.lifecycle import liveness

    refs = liveness.in_scope(project, scope, _tracked())
    warnings: list[str] = []
    if scope.registry:
        try:
            refs += [r for r in liveness.in_scope(
                project, scope, [liveness.registered_versions_and_runs, liveness.packages])
                     if project.odb.exists(r.oid)]
        except CairnError as e:
            warnings.append(f"models and run artifacts not pushed: {e}")
    return _unique_outs(refs), warnings


def _unique_outs(refs: Iterable[Reference]) -> list[TrackedPath]:
    """Each (digest, kind) once, as an out at the first path naming it."""
    outs: dict[tuple[str, bool], TrackedPath] = {}
    for ref in refs:
        outs.setdefault((ref.oid, ref.is_tree), as_out(ref))
    return list(outs.values())


def as_out(ref: Reference) -> TrackedPath:
    return TrackedPath(ref.path, ref.oid, ref.size, (ref.nfiles or 0) if ref.is_tree else None)


@dataclass
class FetchResult:
    transferred: TransferResult
    run_cache: RunCacheTransfer | None = None


def fetch(targets: Iterable[str] = (), *, remote: str | None = None, jobs: int | None = None,
          revs: Iterable[str] = (), all_tags: bool = False, all_branches: bool = False,
          all_commits: bool = False, run_cache: bool = False, root: Path | None = None,
          progress: Progress | None = None, on_total: Progress | None = None) -> FetchResult:
    """Download the tracked outs in scope that the cache lacks (the run cache first)."""
    with opened(root) as project:
        return _fetch(project, tuple(targets), remote, jobs,
                      _revisions(revs, all_tags, all_branches, all_commits), run_cache,
                      progress, on_total)


def _fetch(project: ProjectContext, targets: tuple[str, ...], remote: str | None,
           jobs: int | None, revisions: RevisionScope, run_cache: bool,
           progress: Progress | None, on_total: Progress | None) -> FetchResult:
    from cairn.lifecycle import liveness
    from cairn.workspace.sync import fetch as fetch_outs

    cached = None
    if run_cache:
        from cairn.pipeline import runcache_remote

        cached = runcache_remote.fetch(project, remote, jobs, progress)
    scope = liveness.Scope(targets, revisions, purpose="fetch")
    outs = _unique_outs(liveness.in_scope(project, scope, _tracked()))
    return FetchResult(fetch_outs(project, outs, remote, jobs, progress, on_total), cached)


@dataclass
class PullResult:
    fetched: FetchResult
    checkout: CheckoutResult


def pull(targets: Iterable[str] = (), *, remote: str | None = None, jobs: int | None = None,
         revs: Iterable[str] = (), all_tags: bool = False, all_branches: bool = False,
         all_commits: bool = False, force: bool = False, run_cache: bool = False,
         root: Path | None = None, progress: Progress | None = None,
         on_total: Progress | None = None) -> PullResult:
    """Fetch, then check out the workspace; what failed to arrive shows in both results."""
    from cairn.workspace.checkout import checkout as do_checkout

    targets = tuple(targets)
    with opened(root) as project:
        fetched = _fetch(project, targets, remote, jobs,
                         _revisions(revs, all_tags, all_branches, all_commits), run_cache,
                         progress, on_total)
        return PullResult(fetched, do_checkout(project, targets, force=force))


def cloud_status(targets: Iterable[str] = (), *, remote: str | None = None,
                 jobs: int | None = None, root: Path | None = None) -> CloudStatus:
    """Per tracked out in the workspace: which of its objects the remote lacks."""
    from cairn.lifecycle import liveness
    from cairn.workspace.sync import cloud_status as compare

    scope = liveness.Scope(tuple(targets), purpose="status --cloud")
    with opened(root) as project:
        outs = [as_out(r) for r in liveness.in_scope(project, scope, _tracked())]
        return compare(project, outs, remote, jobs)


# -- maintenance ------------------------------------------------------------------------

def gc(*, all_tags: bool = False, all_branches: bool = False, all_commits: bool = False,
       revs: Iterable[str] = (), cloud: bool = False, remote: str | None = None,
       force: bool = False, dry_run: bool = False, jobs: int | None = None,
       root: Path | None = None) -> GcResult:
    """Delete cache (and with `cloud`, remote) objects that nothing live references."""
    from cairn.lifecycle.gc import gc as do_gc

    with opened(root) as project:
        return do_gc(project, _revisions(revs, all_tags, all_branches, all_commits),
                     cloud=cloud, remote=remote, force=force, dry_run=dry_run, jobs=jobs)


def retention_apply(*, cloud: bool = False, remotes: Iterable[str] = (),
                    all_commits: bool = False, dry_run: bool = False, jobs: int | None = None,
                    root: Path | None = None) -> RetentionResult:
    """Delete the runs the `[retention.runs]` policy expires and the objects only they
    named, in the cache (and with `cloud`, on the remotes)."""
    from cairn.lifecycle.retention import apply

    with opened(root) as project:
        return apply(project, cloud=cloud, remotes=tuple(remotes), all_commits=all_commits,
                     dry_run=dry_run, jobs=jobs)


def fsck(*, remote: str | None = None, jobs: int | None = None, root: Path | None = None,
         progress: Progress | None = None) -> FsckResult:
    from cairn.lifecycle.fsck import fsck as do_fsck

    with opened(root) as project:
        return do_fsck(project, remote, jobs, progress)


def du(*, remote: str | None = None, jobs: int | None = None,
       root: Path | None = None) -> DiskUsage:
    from cairn.lifecycle.du import du as do_du

    with opened(root) as project:
        return do_du(project, remote, jobs)


def _revisions(revs: Iterable[str], all_tags: bool, all_branches: bool,
               all_commits: bool) -> RevisionScope:
    return RevisionScope(tuple(revs), all_tags, all_branches, all_commits)
