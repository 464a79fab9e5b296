"""What the installed git hooks do, so nobody has to remember Cairn next to git.

post-checkout / post-merge: check out the data the new commit names, fetching from the
default remote whatever the cache lacks. pre-push: push what is live at every commit
being pushed (and in the workspace, and the registry) to the default remote; a failure
stops the `git push`. The hooks are `cairn git-hook NAME`, over these functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cairn.commands import data
from cairn.commands._context import opened
from cairn.errors import CairnError
from cairn.scm.git import Git

NULL_SHA = "0" * 40


def run_hook(name: str, args: list[str], stdin: Iterable[str], *,
             root: Path | None = None) -> list[str]:
    """Run hook `name` with git's arguments and input; return lines to show. Errors in
    checkout hooks only warn: the git checkout itself has happened."""
    if name == "post-checkout" and len(args) >= 3 and args[2] == "0":
        return []  # a file checkout, not a branch/commit switch
    if name in ("post-checkout", "post-merge"):
        try:
            return _update_workspace(root)
        except CairnError as e:
            return [f"cairn: data not updated after git {name.split('-')[1]}: {e}"]
    if name == "pre-push":
        return _pre_push(stdin, args[0] if args else None, root)
    raise CairnError(f"unknown hook {name!r}; expected post-checkout, post-merge or pre-push")


def _update_workspace(root: Path | None) -> list[str]:
    result = data.checkout(root=root)
    fetched = 0
    with opened(root) as project:
        has_remote = bool(project.config.get("core.remote"))
    if result.missing and has_remote:
        pulled = data.pull(root=root)
        fetched, result = len(pulled.fetched.transferred.transferred), pulled.checkout
    result.raise_for_problems()
    lines = [f"cairn: fetched {fetched} object(s) from the default remote"] if fetched else []
    if result.changed or result.removed:
        lines.append(f"cairn: updated {len(result.changed) + len(result.removed)} file(s)")
    return lines


def _pre_push(stdin: Iterable[str], git_remote: str | None, root: Path | None) -> list[str]:
    """Push the data of the commits being pushed to the default remote, so a clone of
    any pushed tag can pull its data."""
    with opened(root) as project:
        default = project.config.get("core.remote")
        commits = pushed_commits(stdin, project.git, git_remote)
    if not default:
        return ["cairn: no default remote, so no data was pushed "
                "(set one with `cairn remote add -d NAME URL`)"]
    try:
        result = data.push(commits=commits, root=root)
        result.transferred.raise_for_failures("pushed")
    except CairnError as e:
        # Failing the hook stops `git push`: say so, and how to go ahead anyway.
        raise CairnError(f"{e} — so git push was stopped; fix that and push again, "
                         "or skip the data with `git push --no-verify`") from e
    lines = [f"cairn: {w}" for w in result.warnings]
    count = len(result.transferred.transferred)
    return lines + ([f"cairn: pushed {count} object(s) to {default!r}"] if count else [])


def pushed_commits(lines: Iterable[str], git: Git | None, remote: str | None) -> list[str]:
    """Every commit a push sends, from git's pre-push input lines
    `<local ref> <local sha> <remote ref> <remote sha>`: the tips and what lies between
    them and what the remote has, so each pushed commit's data can be pulled."""
    commits: list[str] = []
    for line in lines:
        parts = line.split()
        if len(parts) != 4 or parts[1] == NULL_SHA:  # NULL local: the ref is deleted
            continue
        remote_tip = None if parts[3] == NULL_SHA else parts[3]
        commits.extend(git.commits_to_push(parts[1], remote_tip, remote) if git else [parts[1]])
    return list(dict.fromkeys(commits))
