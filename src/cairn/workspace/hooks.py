"""What the installed git hooks do, so nobody has to remember Cairn next to git.

post-checkout / post-merge: check out the data the new commit names, fetching from the
default remote whatever the cache lacks. pre-push: push the data of every commit being
pushed to the default remote; a failure stops the `git push`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from cairn.errors import CairnError
from cairn.project.context import ProjectContext, open_project
from cairn.scm.git import Git
from cairn.workspace.checkout import checkout

NULL_SHA = "0" * 40


def run_hook(name: str, args: list[str], stdin: Iterable[str] | None = None) -> list[str]:
    """Run hook `name`; return lines to show. Errors in checkout hooks only warn."""
    if name == "post-checkout" and len(args) >= 3 and args[2] == "0":
        return []  # a file checkout, not a branch/commit switch
    if name in ("post-checkout", "post-merge"):
        try:
            with open_project() as project:
                return _update_workspace(project)
        except CairnError as e:
            return [f"cairn: data not updated after git {name.split('-')[1]}: {e}"]
    if name == "pre-push":
        from cairn.workspace.sync import push_for_git

        lines = sys.stdin if stdin is None else stdin
        with open_project() as project:
            remote = args[0] if args else None
            return push_for_git(project, pushed_commits(lines, project.git, remote))
    raise CairnError(f"unknown hook {name!r}; expected post-checkout, post-merge or pre-push")


def _update_workspace(project: ProjectContext) -> list[str]:
    result = checkout(project)
    fetched = 0
    if result.missing and project.config.get("core.remote"):
        from cairn.workspace.sync import pull

        pulled = pull(project)
        fetched, result = len(pulled.fetched.transferred), pulled.checkout
    result.raise_for_problems()
    lines = [f"cairn: fetched {fetched} object(s) from the default remote"] if fetched else []
    if result.changed or result.removed:
        lines.append(f"cairn: updated {len(result.changed) + len(result.removed)} file(s)")
    return lines


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
