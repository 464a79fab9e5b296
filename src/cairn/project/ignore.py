"""Keep tracked paths out of git: ``/name`` lines in the ``.gitignore`` beside them.

Each line is a pattern (gitignore(5)) that must match that one name: ``\\``, ``*``, ``?``
and ``[`` are escaped, and so are trailing spaces (git strips them otherwise); a leading
``#`` or ``!`` needs nothing, as the line starts with ``/``. A pattern cannot hold a
newline, and git drops a carriage return before one: names with either cannot be ignored
exactly, and are refused (`check_ignorable`). Lines are bytes, as git reads them.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

from cairn.errors import PathError
from cairn.fsutil import atomic_write

_SPECIAL = re.compile(rb"([\\*?\[])")


def check_ignorable(rel: str) -> None:
    """Refuse a path whose name no .gitignore line can match exactly."""
    name = rel.rsplit("/", 1)[-1]
    if "\n" in name or "\r" in name:
        raise PathError(f"{rel!r}: a name holding a newline or carriage return cannot be "
                        "listed in .gitignore (one pattern a line); rename it first", rel)


def ignore_line(name: str) -> bytes:
    """The .gitignore line matching exactly `name` in that .gitignore's directory."""
    escaped = _SPECIAL.sub(rb"\\\1", os.fsencode(name))
    kept = escaped.rstrip(b" ")
    return b"/" + kept + b"\\ " * (len(escaped) - len(kept))


def _read_not_following(gitignore: Path) -> bytes:
    """The .gitignore's bytes (b"" if none); never through a symlink, which a repository
    could point at a private file for `cairn add` to copy into the next commit."""
    try:
        fd = os.open(gitignore, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return b""
    except OSError as e:
        if e.errno != errno.ELOOP:
            raise
        raise PathError(f"{gitignore}: is a symlink; Cairn neither reads nor writes a "
                        ".gitignore through one — replace it with a plain file",
                        str(gitignore)) from None
    with os.fdopen(fd, "rb") as f:
        return f.read()


def ensure_ignored(path: Path) -> Path | None:
    """Add ``/<name>`` to the .gitignore in `path`'s directory; return it if changed."""
    check_ignorable(path.name)
    gitignore = path.parent / ".gitignore"
    entry = ignore_line(path.name)
    text = _read_not_following(gitignore)
    if entry in text.splitlines():
        return None
    if text and not text.endswith(b"\n"):
        text += b"\n"
    atomic_write(gitignore, text + entry + b"\n")
    return gitignore
