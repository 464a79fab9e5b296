"""What the installed git hooks do: checkout after checkout/merge, push before push."""

from __future__ import annotations

from cairn.errors import CairnError
from cairn.workspace.checkout import checkout
from cairn.workspace.project import open_project


def run_hook(name: str, args: list[str]) -> list[str]:
    """Run hook `name`; return lines to show. Errors in checkout hooks only warn."""
    if name == "post-checkout" and len(args) >= 3 and args[2] == "0":
        return []  # a file checkout, not a branch/commit switch
    if name in ("post-checkout", "post-merge"):
        try:
            with open_project() as project:
                result = checkout(project)
                result.raise_for_problems()
        except CairnError as e:
            return [f"cairn: checkout after git {name.split('-')[1]} incomplete: {e}"]
        return [f"cairn: updated {len(result.changed)} file(s)"] if result.changed else []
    if name == "pre-push":
        from cairn.workspace.sync import push_for_git

        with open_project() as project:
            return push_for_git(project)
    raise CairnError(f"unknown hook {name!r}; expected post-checkout, post-merge or pre-push")
