"""What is live: every object something in scope still references. One answer, asked by
gc, push, the pre-push hook, `status --cloud`, fsck and du (and, later, retention and
tiering), so they can never disagree about what may be deleted or must be sent.

The reference providers are a fixed list, `PROVIDERS`, not a registry filled by import
side effects (which once let a Python caller of gc delete what `cairn.lock` names):
- workspace pointers: the outs of the pointer files, in the workspace and at each git
  revision in scope;
- pipeline locks: the cached outs of each `cairn.lock`, likewise;
- registered versions and live runs: every digest a model version names and every
  artifact of a run that is not deleted, read from the project's metadata store,
  whatever the revisions in scope (MLflow's gc deletes a deleted run's artifacts even
  when a Production version came from them; here the store refuses to delete such a run);
- packages: the package files built from versions (`cairn package build`), as recorded.
The run cache is a shortcut, not a record: its objects live only while one of these
names them (`--run-cache` transfers its entries and their objects on its own).

A directory reference names its manifest; `expand` follows it down to every object.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from cairn.errors import FormatError, NotFoundError, UserError
from cairn.objects.hashing import hash_bytes
from cairn.objects.odb import ObjectDB
from cairn.objects.tree import MANIFEST_START, TreeEntry, decode_tree
from cairn.project.context import ProjectContext
from cairn.project.lockfile import LOCK_NAME
from cairn.project.pointer import PointerFile
from cairn.project.revisions import RevisionScope, commits_in_scope, locks_at, pointers_at
from cairn.scm.git import Git
from cairn.workspace.status import select_tracked, workspace_locks

if TYPE_CHECKING:  # the store is imported only when the registry is asked
    from cairn.store.base import MetadataStore
    from cairn.store.entities import PagedList, Run

WORKSPACE = "workspace"
REGISTRY = "the model registry and runs"
T = TypeVar("T")


@dataclass(frozen=True)
class Reference:
    """One object something in scope needs; `path` and `source` are for messages."""

    oid: str
    is_tree: bool = False
    path: str = ""  # the tracked path (relative to the project root) or another label
    source: str = WORKSPACE  # "workspace", "tag v1", "commit 1a2b3c4", REGISTRY, …
    size: int = field(default=0, compare=False)  # of the tracked out, where one says
    nfiles: int | None = field(default=None, compare=False)  # below a directory out

    def describe(self) -> str:
        if self.source == WORKSPACE:
            return f"{self.path} in the workspace"
        return f"{self.path} from {self.source}" if self.path else self.source


@dataclass(frozen=True)
class Scope:
    """Which references count.

    `targets` narrow the workspace's and the revisions' tracked outs to these paths (as
    the user wrote them); `revisions` and `commits` add git history; `beyond_project`
    also reads pointer files elsewhere in the git repository (a shared cache may hold
    their objects: gc keeps them); `git_kept_outs` adds the lock outs git keeps
    (`cache: false`: metrics, plots), whose bytes repro stores in the cache too, so the
    run cache can restore them (gc keeps them; push never sent them); `registry` adds
    registered versions and live runs.
    """

    targets: tuple[str, ...] = ()
    revisions: RevisionScope = field(default_factory=RevisionScope)
    commits: tuple[str, ...] = ()
    beyond_project: bool = False
    git_kept_outs: bool = False
    registry: bool = False
    purpose: str = "Cairn"  # who asks, for messages: "gc", "push", …

    @property
    def uses_git(self) -> bool:
        return self.revisions.uses_git or bool(self.commits)

    def describe(self) -> str:
        return self.revisions.describe()


@dataclass
class Sources:
    """What the providers of one question read, each read once: the git commits in scope
    (sha → label such as "tag v1"; none for the workspace alone) and the tracked outs
    (pointer files and cairn.lock views) in the workspace and at each commit."""

    project: ProjectContext
    scope: Scope
    commits: dict[str, str]
    _tracked: list[tuple[str, PointerFile]] | None = None

    def tracked(self) -> list[tuple[str, PointerFile]]:
        if self._tracked is None:
            self._tracked = list(_read_tracked(self.project, self.scope, self.commits))
        return self._tracked


# A provider names the objects it keeps live, reading what it needs from `Sources`.
Provider = Callable[[Sources], Iterable[Reference]]


def workspace_pointers(sources: Sources) -> Iterator[Reference]:
    """The outs of the pointer files, in the workspace and at each commit in scope."""
    return _references(sources, locks=False)


def pipeline_locks(sources: Sources) -> Iterator[Reference]:
    """The cached outs of each cairn.lock, in the workspace and at each commit in scope
    (with `git_kept_outs`, the others too)."""
    yield from _references(sources, locks=True)
    if sources.scope.git_kept_outs:
        yield from _git_kept_outs(sources)


def registered_versions_and_runs(sources: Sources) -> list[Reference]:
    """What the metadata store names: model versions and artifacts of live runs."""
    return _registry_references(sources, ())


def registry_without(run_ids: Iterable[str]) -> Provider:
    """`registered_versions_and_runs` as if the runs `run_ids` were deleted: retention's
    question, asked before it deletes them, so its dry run lists what the apply does."""
    excluded = tuple(sorted(set(run_ids)))
    return lambda sources: _registry_references(sources, excluded)


def registry_without_versions(versions: Iterable[tuple[str, int]],
                              run_ids: Iterable[str] = ()) -> Provider:
    """`registered_versions_and_runs` as if `versions` (model name, number) were not
    registered and the runs `run_ids` deleted: tiering's question, what else names the
    objects of Archived versions (and of the runs they came from)."""
    excluded = tuple(sorted(set(run_ids)))
    without = tuple(sorted(set(versions)))
    return lambda sources: _registry_references(sources, excluded, without)


def packages_without_versions(versions: Iterable[tuple[str, int]]) -> Provider:
    """`packages` but those built from `versions` (model name, number)."""
    without = set(versions)

    def provide(sources: Sources) -> list[Reference]:
        project, scope = sources.project, sources.scope
        if not scope.registry or not project.has_store():
            return []
        return [Reference(p.object_id, False, f"package {p.name} v{p.version}", REGISTRY,
                          p.size)
                for p in project.store.list_packages() if (p.name, p.version) not in without]

    return provide


def _registry_references(sources: Sources, excluding_runs: tuple[str, ...],
                         excluding_versions: tuple[tuple[str, int], ...] = ()
                         ) -> list[Reference]:
    project, scope = sources.project, sources.scope
    if not scope.registry or not project.has_store():
        return []  # nothing tracked yet: do not create a database to say so
    digests = project.store.referenced_digests(excluding_runs, excluding_versions)
    dirs = _known_dirs(project, digests)
    return [Reference(d, d in dirs, "", REGISTRY) for d in sorted(digests)]


def packages(sources: Sources) -> list[Reference]:
    """The package files `cairn package build` stored and recorded against versions."""
    project, scope = sources.project, sources.scope
    if not scope.registry or not project.has_store():
        return []
    return [Reference(p.object_id, False, f"package {p.name} v{p.version}", REGISTRY, p.size)
            for p in project.store.list_packages()]


PROVIDERS: tuple[Provider, ...] = (workspace_pointers, pipeline_locks,
                                   registered_versions_and_runs, packages)


def run_cache_entries(sources: Sources) -> Iterator[Reference]:
    """The outs the local run cache would restore. Not in `PROVIDERS` (for gc the run
    cache is a shortcut); retention keeps them, as it deletes only what expired runs
    alone named."""
    from cairn.pipeline import runcache

    root = sources.project.odb.root
    for key in runcache.keys(root):
        entry = runcache.lookup(root, key)
        if entry is not None:
            yield from (Reference(o.digest, o.is_dir, o.path, "the run cache", o.size, o.nfiles)
                        for o in entry.outs)


def in_scope(project: ProjectContext, scope: Scope,
             providers: Iterable[Provider] = PROVIDERS) -> list[Reference]:
    """Every reference the providers name for `scope`."""
    sources = Sources(project, scope, _commits(project, scope))
    return [ref for provider in providers for ref in provider(sources)]


# -- tracked outs: pointer files and cairn.lock, in the workspace and in git ------------

def _references(sources: Sources, locks: bool) -> Iterator[Reference]:
    project, git = sources.project, sources.project.git
    for source, ptr in sources.tracked():
        if (ptr.path.name == LOCK_NAME) == locks:
            yield from _outs(project, ptr, source, git)


def _git_kept_outs(sources: Sources) -> Iterator[Reference]:
    project, git = sources.project, sources.project.git
    locks = [(WORKSPACE, lock) for lock in workspace_locks(project)]
    for sha, label in sources.commits.items():
        assert git is not None  # _commits checked
        locks += [(label, lock) for lock in locks_at(project, git, sha)]
    for source, lock in locks:
        for stage in lock.stages.values():
            yield from (Reference(o.digest, o.is_dir, o.path, source, o.size, o.nfiles)
                        for o in stage.outs if not o.cache)


def _read_tracked(project: ProjectContext, scope: Scope, commits: Mapping[str, str]
                  ) -> Iterator[tuple[str, PointerFile]]:
    try:
        workspace = select_tracked(project, scope.targets)
    except NotFoundError:
        if not commits:
            raise
        workspace = []  # a target that exists only at the revisions asked for
    yield from ((WORKSPACE, ptr) for ptr in workspace)
    git = project.git
    parsed: dict[bytes, PointerFile] = {}
    for sha, label in commits.items():
        assert git is not None  # _commits checked
        try:
            for _, ptr in pointers_at(project, git, sha, scope.targets, parsed=parsed,
                                      beyond_project=scope.beyond_project, with_locks=True):
                yield label, ptr
        except FormatError as e:
            # Skipping it could lose what it names, so stop and say where.
            raise FormatError(f"{e} (in {label}); {scope.purpose} cannot tell what it "
                              f"references — leave that revision out of the {scope.purpose} "
                              "scope") from None


def _outs(project: ProjectContext, ptr: PointerFile, source: str,
          git: Git | None = None) -> Iterator[Reference]:
    base = ptr.directory
    for out in ptr.outs:
        where = base / out.path
        try:
            rel = where.relative_to(project.root).as_posix()
        except ValueError:  # a pointer file elsewhere in the git repository
            rel = where.relative_to(git.root).as_posix() if git else out.path
        yield Reference(out.digest, out.is_dir, posixpath.normpath(rel), source, out.size,
                        out.nfiles)


def _commits(project: ProjectContext, scope: Scope) -> dict[str, str]:
    if not scope.uses_git:
        return {}
    git = project.git
    if git is None:
        raise UserError(f"{scope.purpose} over {scope.describe()} reads git history, but "
                        f"{project.root} is not in a git repository; drop --rev/--all-tags/"
                        "--all-branches/--all-commits")
    found = commits_in_scope(git, scope.revisions) if scope.revisions.uses_git else {}
    for sha in scope.commits:
        found.setdefault(sha, f"commit {sha[:7]}")
    return found


# -- registered versions and runs: which digests are directories ------------------------

def _known_dirs(project: ProjectContext, digests: set[str]) -> set[str]:
    """Which digests are directory manifests: read from the cache when the object is
    there, else from the store's records (run artifacts say; versions are directories)."""
    dirs: set[str] = set()
    unknown: set[str] = set()
    for digest in digests:
        kind = _kind_in_cache(project.odb, digest)
        if kind is None:
            unknown.add(digest)
        elif kind:
            dirs.add(digest)
    if unknown:
        dirs |= unknown & _recorded_dirs(project.store)
    return dirs


def _recorded_dirs(store: MetadataStore) -> set[str]:
    from cairn.store.base import ALL

    dirs = {mv.digest for mv in _paged(
        lambda token: store.search_model_versions("", 10000, None, token))}
    for experiment in _paged(lambda token: store.search_experiments(ALL, 1000, None, None,
                                                                     token)):
        for run in _runs(store, experiment.experiment_id):
            dirs.update(a.digest for a in store.list_artifacts(run.info.run_id) if a.is_dir)
    return dirs


def _runs(store: MetadataStore, experiment_id: str) -> Iterator[Run]:
    from cairn.store.base import ACTIVE_ONLY

    return _paged(lambda token: store.search_runs([experiment_id], "", ACTIVE_ONLY, 1000, None,
                                                  token))


def _paged(fetch: Callable[[str | None], PagedList[T]]) -> Iterator[T]:
    token = None
    while True:
        page = fetch(token)
        yield from page
        token = page.token
        if not token:
            return


def _kind_in_cache(odb: ObjectDB, digest: str) -> bool | None:
    """True for a manifest, False for a plain file, None when the cache lacks it."""
    try:
        with odb.open(digest) as f:
            if f.read(len(MANIFEST_START)) != MANIFEST_START:
                return False
            decode_tree(MANIFEST_START + f.read(), digest)
            return True
    except NotFoundError:
        return None
    except FormatError:
        return False


# -- following directories down ---------------------------------------------------------

ManifestReader = Callable[[str], list[TreeEntry] | None]


def manifest_reader(odb: ObjectDB, remote: ObjectDB | None = None) -> ManifestReader:
    """Read a manifest from the cache, else the remote; None when neither has a good copy."""

    def read(oid: str) -> list[TreeEntry] | None:
        for data in _manifest_copies(odb, remote, oid):
            if hash_bytes(data) != oid:
                continue  # a corrupt copy: try the next place
            try:
                return decode_tree(data, oid)
            except FormatError:
                return None  # good bytes we cannot read (e.g. a newer format)
        return None

    return read


def _manifest_copies(odb: ObjectDB, remote: ObjectDB | None, oid: str) -> Iterator[bytes]:
    if odb.exists(oid):
        yield odb.read_bytes(oid, verify=False)
    if remote is not None:
        try:
            with remote.open(oid) as f:
                yield f.read()
        except NotFoundError:
            return


@dataclass
class LiveObjects:
    oids: set[str] = field(default_factory=set)
    unseen_trees: dict[str, Reference] = field(default_factory=dict)  # manifests not readable
    paths: dict[str, list[str]] = field(default_factory=dict)  # oid → paths, when asked


def expand(refs: Iterable[Reference], read: ManifestReader,
           with_paths: bool = False) -> LiveObjects:
    """Every object `refs` name, directories followed down through their manifests."""
    found = LiveObjects()
    expanded: set[str] = set()
    stack = list(refs)
    while stack:
        ref = stack.pop()
        found.oids.add(ref.oid)
        if with_paths:
            found.paths.setdefault(ref.oid, []).append(ref.path)
        if not ref.is_tree or ref.oid in expanded:
            continue
        expanded.add(ref.oid)
        entries = read(ref.oid)
        if entries is None:
            found.unseen_trees.setdefault(ref.oid, ref)
            continue
        stack.extend(Reference(e.digest, e.is_dir, f"{ref.path}/{e.name}", ref.source)
                     for e in entries)
    return found
