"""`cairn tier apply`: the objects only Archived model versions need, to the cold remote
and back (cairn.lifecycle.tiering), as the CLI and Python call it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from cairn.commands._context import opened
from cairn.project.revisions import RevisionScope

if TYPE_CHECKING:
    from cairn.lifecycle.tiering import TierResult


def tier_apply(*, hot: str | None = None, cold: str | None = None, revs: Iterable[str] = (),
               all_tags: bool = False, all_branches: bool = False, all_commits: bool = False,
               dry_run: bool = False, jobs: int | None = None,
               root: Path | None = None) -> TierResult:
    """Move to the cold remote what only Archived versions need (and back what a version
    promoted again needs); with `dry_run`, only the plan. The git scope is gc's: what the
    workspace and the revisions asked for reference stays hot."""
    from cairn.lifecycle.tiering import tier_apply as do_apply

    with opened(root) as project:
        return do_apply(project, RevisionScope(tuple(revs), all_tags, all_branches, all_commits),
                        hot=hot, cold=cold, dry_run=dry_run, jobs=jobs)
