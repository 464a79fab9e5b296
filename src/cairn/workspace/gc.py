"""`cairn gc`: delete cache (and remote) objects that nothing in scope references.

What is referenced:
- every out of every pointer file in the workspace (always in scope);
- with a git scope, every pointer file at each tag, branch or commit, read from git;
- whatever the reference providers name (the model registry, pipeline locks, packages):
  those are kept whatever the scope.
A directory out references its manifest and every object below it.

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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from cairn.errors import CairnError, FormatError, NotFoundError, UserError
from cairn.objects.hashing import hash_bytes
from cairn.objects.odb import ObjectDB
from cairn.objects.tree import TreeEntry, decode_tree
from cairn.project import pointer
from cairn.project.context import ProjectContext
from cairn.project.revisions import RevisionScope, commits_in_scope, pointers_at
from cairn.remotes import leftovers
from cairn.remotes.connect import has_remote, open_remote
from cairn.remotes.leftovers import Leftover
from cairn.scm.git import Git

WORKSPACE = "workspace"
# Temp files on a remote unwritten for this long belong to no live push (remotes.leftovers).
TEMP_AGE = 24 * 3600


# -- what references an object ---------------------------------------------------------

@dataclass(frozen=True)
class Reference:
    """One object something in scope needs; `path` and `source` are for messages."""

    oid: str
    is_tree: bool = False
    path: str = ""  # the tracked path (relative to the repository root) or another label
    source: str = WORKSPACE  # "workspace", "tag v1", "commit 1a2b3c4", "registry", …

    def describe(self) -> str:
        if self.source == WORKSPACE:
            return f"{self.path} in the workspace"
        return f"{self.path} from {self.source}" if self.path else self.source


# A provider names objects that must survive gc. `revisions` are the git commits in
# scope (empty for the workspace scope), for providers whose references live in git.
ReferenceProvider = Callable[[ProjectContext, Sequence[str]], Iterable[Reference]]

# Always consulted by gc, whatever its scope. Other packages add themselves here.
REFERENCE_PROVIDERS: list[ReferenceProvider] = []


def register_reference_provider(provider: ReferenceProvider) -> ReferenceProvider:
    """Make gc keep everything `provider` names (usable as a decorator)."""
    if provider not in REFERENCE_PROVIDERS:
        REFERENCE_PROVIDERS.append(provider)
    return provider


def out_references(ptr: pointer.PointerFile, rel_dir: str, source: str) -> Iterator[Reference]:
    for out in ptr.outs:
        path = f"{rel_dir}/{out.path}" if rel_dir else out.path
        yield Reference(out.digest, out.is_dir, path, source)


def workspace_references(project: ProjectContext) -> Iterator[Reference]:
    """The outs of every pointer file in the workspace."""
    for ptr_path in pointer.find_pointer_files(project.root):
        ptr = pointer.load(ptr_path)
        rel_dir = ptr.directory.relative_to(project.root).as_posix()
        yield from out_references(ptr, "" if rel_dir == "." else rel_dir, WORKSPACE)


# -- references in git history --------------------------------------------------------

GcScope = RevisionScope  # its name from when gc had a scope type of its own
WORKSPACE_ONLY = RevisionScope()


def git_references(project: ProjectContext, git: Git,
                   revisions: dict[str, str]) -> Iterator[Reference]:
    """The outs of every pointer file committed at each of `revisions` (sha → label).

    Pointer files outside the project count too: with a shared cache, or a project that
    moved within its git repository, they may name objects in this cache.
    """
    parsed: dict[bytes, pointer.PointerFile] = {}
    for sha, source in revisions.items():
        try:
            for rel, ptr in pointers_at(project, git, sha, beyond_project=True, parsed=parsed):
                yield from out_references(ptr, rel.rpartition("/")[0], source)
        except FormatError as e:
            # Skipping it could delete what it names, so stop and say where.
            raise FormatError(f"{e} (in {source}); gc cannot tell what it references — "
                              "leave that revision out of the gc scope") from None


def collect_references(project: ProjectContext, scope: RevisionScope,
                       providers: Sequence[ReferenceProvider] | None = None) -> list[Reference]:
    refs = list(workspace_references(project))
    revisions: dict[str, str] = {}
    if scope.uses_git:
        git = project.git
        if git is None:
            raise UserError(f"gc over {scope.describe()} reads git history, but {project.root} "
                            "is not in a git repository; drop --all-tags/--all-branches/"
                            "--all-commits")
        revisions = commits_in_scope(git, scope)
        refs.extend(git_references(project, git, revisions))
    for provider in REFERENCE_PROVIDERS if providers is None else providers:
        refs.extend(provider(project, list(revisions)))
    return refs


# -- looking inside directory manifests ------------------------------------------------

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
class ReferencedObjects:
    oids: set[str] = field(default_factory=set)
    unseen_trees: dict[str, Reference] = field(default_factory=dict)  # manifests not readable
    paths: dict[str, list[str]] = field(default_factory=dict)  # oid → paths, when asked


def expand_references(refs: Iterable[Reference], read: ManifestReader,
                      with_paths: bool = False) -> ReferencedObjects:
    """Every object `refs` name, directories followed down through their manifests."""
    found = ReferencedObjects()
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
       providers: Sequence[ReferenceProvider] | None = None) -> GcResult:
    """Delete unreferenced objects from the cache (and with `cloud`, the remote)."""
    jobs = jobs or project.jobs
    with project.lock():
        store = (open_remote(project.config, remote, "gc --cloud")
                 if cloud or has_remote(project.config, remote) else None)
        refs = collect_references(project, scope, providers)
        referenced = expand_references(refs, manifest_reader(project.odb, store))
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
