"""`cairn unprotect`: a writable private copy in place of a link into the cache."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from cairn.errors import PathError
from cairn.objects.links import unprotect as unprotect_file
from cairn.project.context import ProjectContext


def unprotect(project: ProjectContext, paths: Iterable[str], cwd: Path | None = None) -> list[str]:
    done = []
    for given in paths:
        rel = project.relpath(given, cwd)
        path = project.root / rel
        if not path.exists():
            raise PathError(f"{rel}: no such file or directory", rel)
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        for f in files:
            unprotect_file(f)
        done.append(rel)
    return done
