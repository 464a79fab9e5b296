"""Git hooks so nobody has to remember Cairn next to git.

post-checkout and post-merge run ``cairn checkout``; pre-push runs ``cairn push`` to
the default remote. Hooks call the Python that installed them, so they work without an
activated virtualenv. A hook someone else wrote is never overwritten.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from cairn.fsutil import atomic_write

MARKER = "# installed by cairn"
HOOKS = ("post-checkout", "post-merge", "pre-push")


def hook_script(name: str, python: str | None = None) -> str:
    python = shlex.quote(python or sys.executable)
    return f'#!/bin/sh\n{MARKER}\nexec {python} -m cairn git-hook {name} "$@"\n'


def hooks_dir(git_root: Path) -> Path:
    dot_git = git_root / ".git"
    if dot_git.is_file():  # a worktree or submodule: ".git" names the real directory
        target = dot_git.read_text().split("gitdir:", 1)[-1].strip()
        dot_git = (git_root / target).resolve()
    return dot_git / "hooks"


def install_hooks(git_root: Path) -> list[str]:
    """Install Cairn's hooks; return the names skipped because another hook is there."""
    directory = hooks_dir(git_root)
    directory.mkdir(parents=True, exist_ok=True)
    skipped = []
    for name in HOOKS:
        path = directory / name
        if path.exists() and MARKER not in path.read_text(errors="replace"):
            skipped.append(name)
            continue
        atomic_write(path, hook_script(name).encode(), mode=0o755)
    return skipped


def installed_hooks(git_root: Path) -> list[str]:
    directory = hooks_dir(git_root)
    return [n for n in HOOKS if (directory / n).exists()
            and MARKER in (directory / n).read_text(errors="replace")
            and os.access(directory / n, os.X_OK)]
