"""Keep tracked paths out of git: ``/name`` lines in the ``.gitignore`` beside them."""

from __future__ import annotations

from pathlib import Path

from cairn.fsutil import atomic_write


def ensure_ignored(path: Path) -> Path | None:
    """Add ``/<name>`` to the .gitignore in `path`'s directory; return it if changed."""
    gitignore = path.parent / ".gitignore"
    entry = "/" + path.name.replace("\\", "\\\\").replace("[", "\\[").replace("*", "\\*")
    try:
        text = gitignore.read_text()
    except FileNotFoundError:
        text = ""
    if entry in text.splitlines():
        return None
    if text and not text.endswith("\n"):
        text += "\n"
    atomic_write(gitignore, (text + entry + "\n").encode())
    return gitignore
