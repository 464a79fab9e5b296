"""Which git revisions are in scope, and the pointer files committed at each.

`push`, `fetch`, `pull` (`--rev`, `-T`, `-a`, `-A`) and `gc` (`-T`, `-a`, `-A`) read git
history the same way: a scope names commits, each commit is read once however many refs
reach it, and a pointer blob shared by many commits can be parsed once.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from cairn.errors import FormatError, UserError
from cairn.project import lockfile, pointer
from cairn.project.context import ProjectContext
from cairn.project.lockfile import LockFile, is_lock_path
from cairn.project.pointer import PointerFile
from cairn.scm.git import Git


@dataclass(frozen=True)
class RevisionScope:
    """The workspace is always in scope; these add git history."""

    revs: tuple[str, ...] = ()  # as the user wrote them: a tag, branch, sha, HEAD~2, …
    all_tags: bool = False
    all_branches: bool = False
    all_commits: bool = False

    @property
    def uses_git(self) -> bool:
        return bool(self.revs) or self.all_tags or self.all_branches or self.all_commits

    def describe(self) -> str:
        parts = ["workspace", *(f"rev {rev}" for rev in self.revs)]
        parts += ["all tags"] if self.all_tags else []
        parts += ["all branches"] if self.all_branches else []
        parts += ["all commits"] if self.all_commits else []
        return ", ".join(parts)


def commits_in_scope(git: Git, scope: RevisionScope) -> dict[str, str]:
    """Commit sha → how to name it to the user, for every commit in scope.

    A commit reached several ways gets the most specific name: a rev as the user wrote it,
    else a tag, else a branch, else "commit 1a2b3c4d5e".
    """
    explicit = {git.resolve(rev): rev for rev in scope.revs}  # a bad rev fails before work
    commits: dict[str, str] = {}
    if scope.all_commits:
        commits.update((sha, f"commit {sha[:10]}") for sha in git.all_commits())
    if scope.all_branches:
        commits.update((sha, f"branch {name}")
                       for name, sha in ref_commits(git, "refs/heads/").items())
    if scope.all_tags:
        commits.update((sha, f"tag {name}")
                       for name, sha in ref_commits(git, "refs/tags/").items())
    commits.update(explicit)
    return commits


def ref_commits(git: Git, prefix: str) -> dict[str, str]:
    """Refs under `prefix` (by name below it) → the commit each points to; refs to blobs or
    trees are left out."""
    fmt = "%(refname)%00%(objecttype)%00%(objectname)%00%(*objecttype)%00%(*objectname)"
    found: dict[str, str] = {}
    for line in git.run("for-each-ref", f"--format={fmt}", prefix).decode().splitlines():
        refname, kind, oid, peeled_kind, peeled = line.split("\0")
        name = refname.removeprefix(prefix)
        if kind == "commit" or peeled_kind == "commit":
            found[name] = oid if kind == "commit" else peeled
        elif kind == "tag":  # a tag of a tag: let git peel all the way
            # One that ends at a blob or tree has no commit, so no pointer files.
            with contextlib.suppress(UserError):
                found[name] = git.resolve(refname)
    return found


def pointers_at(project: ProjectContext, git: Git, sha: str, targets: Iterable[str] = (), *,
                beyond_project: bool = False, parsed: dict[bytes, PointerFile] | None = None,
                with_locks: bool = False) -> Iterator[tuple[str, PointerFile]]:
    """The pointer files committed at `sha`: (path relative to the project root, pointer).

    `targets` (tracked paths, pointer files or directories, as the user wrote them) narrow
    it to theirs. With `beyond_project`, pointer files elsewhere in the git repository come
    too, named relative to the git root. With `with_locks`, each cairn.lock of the project
    comes too, as a pointer file of its cached outs (those `targets` cover). Pass one
    `parsed` to calls for several commits to parse each distinct blob once. A malformed
    pointer or lock file raises a FormatError naming `SHA:path`. A yielded pointer's
    `path` is where a checkout of `sha` would put it.
    """
    wanted = [project.relpath(t) for t in targets]
    prefix = project_prefix(project, git)
    listing = git.files_at(sha, "")
    selected = _select((p for p in listing if p.endswith(pointer.SUFFIX)), prefix, wanted,
                       beyond_project)
    parsed = {} if parsed is None else parsed
    for git_path, data in git.read_blobs(sha, list(selected)):
        if data not in parsed:
            parsed[data] = pointer.loads(data, Path(f"{sha}:{git_path}"))
        rel, inside = selected[git_path]
        yield rel, replace(parsed[data], path=(project.root / rel if inside
                                               else git.root / git_path))
    if with_locks:
        yield from _locks_at(project, git, sha, listing, prefix, wanted)


def locks_at(project: ProjectContext, git: Git, sha: str, listing: list[str] | None = None
             ) -> Iterator[LockFile]:
    """Every cairn.lock of the project committed at `sha`, parsed (paths relative to the
    project root); a malformed one raises a FormatError naming the commit."""
    prefix = project_prefix(project, git)
    listing = git.files_at(sha, "") if listing is None else listing
    locks = [p for p in listing if p.startswith(prefix) and is_lock_path(p)]
    for git_path, data in git.read_blobs(sha, locks):
        try:
            yield lockfile.loads(data, git_path.removeprefix(prefix))
        except FormatError as e:
            raise FormatError(f"{e} (in commit {sha[:10]})") from None


def _locks_at(project: ProjectContext, git: Git, sha: str, listing: list[str], prefix: str,
              wanted: list[str]) -> Iterator[tuple[str, PointerFile]]:
    for lock in locks_at(project, git, sha, listing):
        rel = lock.path
        only = None
        if wanted and rel not in wanted:
            only = [o.path for o in lock.cached_outs()
                    if any(o.path == t or o.path.startswith(t + "/") for t in wanted)]
        view = lock.as_pointer(project.root, only)
        if view.outs:
            yield rel, view


def project_prefix(project: ProjectContext, git: Git) -> str:
    """The project's directory within the git repository, as a path prefix ("" at the root)."""
    rel = project.root.resolve().relative_to(git.root.resolve()).as_posix()
    return "" if rel == "." else rel + "/"


def _select(git_paths: Iterable[str], prefix: str, wanted: list[str],
            beyond_project: bool) -> dict[str, tuple[str, bool]]:
    """git path → (path to report, whether it is inside the project), for those in scope."""
    selected: dict[str, tuple[str, bool]] = {}
    for git_path in git_paths:
        if PurePosixPath(git_path).name == pointer.SUFFIX:
            continue  # a bare `.cairn` names no tracked path
        inside = git_path.startswith(prefix)
        rel = git_path.removeprefix(prefix) if inside else git_path
        if wanted:
            if inside and any(_covers(target, rel) for target in wanted):
                selected[git_path] = (rel, True)
        elif inside or beyond_project:
            selected[git_path] = (rel, inside)
    return selected


def _covers(target: str, pointer_path: str) -> bool:
    return pointer_path in (target, target + pointer.SUFFIX) or pointer_path.startswith(
        target + "/")
