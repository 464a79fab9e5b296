"""How a command opens the project it works on."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cairn.project.context import ProjectContext, open_project


@contextmanager
def opened(root: Path | None = None) -> Iterator[ProjectContext]:
    """The project at (or above) `root`, with the metadata store this process chose
    (`cairn.set_tracking_uri`), closed afterwards."""
    from cairn.tracking.backend import explicit_tracking_uri

    with open_project(root, explicit_tracking_uri()) as project:
        yield project


def project_here(root: Path | None = None) -> ProjectContext | None:
    """The project at (or above) `root` or the working directory, if there is one."""
    from cairn.errors import NotARepositoryError

    try:
        return ProjectContext.find(root)
    except NotARepositoryError:
        return None
