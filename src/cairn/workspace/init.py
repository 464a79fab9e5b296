"""`cairn init`: make a directory a Cairn repository (running it twice is harmless)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cairn.config import read_toml, write_toml
from cairn.errors import UserError
from cairn.fsutil import atomic_write
from cairn.project.context import DOT_DIR, FORMAT_VERSION, ProjectContext, find_git_root
from cairn.scm.hooks import install_hooks

# cairn.db*: the embedded tracking database (and its WAL files) is local state.
DOT_GITIGNORE = "/cache/\n/tmp/\n/config.local.toml\n/cairn.db*\n"


@dataclass
class InitResult:
    root: Path
    created: bool
    hooks_skipped: list[str] = field(default_factory=list)
    git: bool = True


def init(root: Path, *, no_scm: bool = False, hooks: bool = True) -> InitResult:
    root = root.absolute()
    git_root = find_git_root(root)
    if git_root is None and not no_scm:
        raise UserError(f"{root} is not in a git repository; run `git init` first, "
                        "or `cairn init --no-scm` to use Cairn without git")
    dot = root / DOT_DIR
    created = not (dot / "config.toml").exists()
    for sub in ("cache", "tmp"):
        (dot / sub).mkdir(parents=True, exist_ok=True)
    config = read_toml(dot / "config.toml")
    if config.get("format", FORMAT_VERSION) != FORMAT_VERSION:
        ProjectContext(root).check_format()  # raises with the upgrade message
    if "format" not in config:
        write_toml(dot / "config.toml", {"format": FORMAT_VERSION, **config})
    if not (dot / ".gitignore").exists():
        atomic_write(dot / ".gitignore", DOT_GITIGNORE.encode())
    skipped = install_hooks(git_root) if git_root is not None and hooks else []
    return InitResult(root, created, skipped, git_root is not None)
