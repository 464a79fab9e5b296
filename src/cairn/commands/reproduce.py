"""`cairn reproduce`: rebuild a registered model version from its lineage and say whether
it came out the same (cairn.lifecycle.reproduce does the work)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cairn.lifecycle.reproduce import Reproduction


def reproduce(*, uri: str, keep: bool = False, metric_tolerance: float | None = None,
              say: Callable[[str], None] | None = None,
              command_stdout: int | None = None) -> Reproduction:
    """Rebuild `uri` (models:/NAME/VERSION, @ALIAS or /STAGE) in a scratch worktree of
    the current project; `keep` leaves that worktree behind. The outcome (status, digests,
    metric deltas) is returned and recorded in the version's audit log; a version that
    cannot be rebuilt raises CannotReproduce, recorded as "failed". `say` hears each
    step; `command_stdout` is where the rebuild's own output goes (e.g. 2: stderr)."""
    from cairn.lifecycle.reproduce import reproduce as rebuild
    from cairn.project.context import ProjectContext
    from cairn.tracking.backend import backend

    b = backend()
    project = b.here or ProjectContext.find()  # outside a project: NotARepositoryError
    return rebuild(project, b.store, b.odb, uri, keep=keep, tolerance=metric_tolerance,
                   say=say, command_stdout=command_stdout)
