"""Paths that name a place in the workspace: the one validator (docs/formats.md, "Paths").

A repository is someone else's writing — a cloned project, a merged pull request, a
fetched branch — and so is anything from a remote or the network. Every path Cairn takes
from there (pointer files, `cairn.lock`, pipeline files, directory manifests, run-cache
entries) or from the user passes here before anything is read or written:

- `problem` / `clean` judge the text: relative, normalised, inside the root, and no
  component that is — or that some filesystem treats as — ``.git`` or ``.cairn``.
- `Root.check` judges the disk: no existing component is a symlink that leaves the
  workspace or enters ``.git``/``.cairn``. A final component may be a symlink to a cache
  object, as ``cache.type = symlink`` makes them.

Writes then replace files by rename, which never follows a final symlink.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from cairn.errors import PathError

RESERVED = (".git", ".cairn")
# Code points HFS+ ignores in names (git's is_hfs_dotgit list): ".g\u200cit" is ".git" there.
_IGNORED_BY_HFS = dict.fromkeys(map(ord, "\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d"
                                          "\u202e\u206a\u206b\u206c\u206d\u206e\u206f\ufeff"))
_SHORT_NAME = re.compile(r"(git|cairn)~[0-9]+")  # NTFS 8.3 names of .git and .cairn


def is_reserved(name: str) -> bool:
    """Is this one path component ``.git`` or ``.cairn`` under some filesystem's spelling
    (any case, trailing dots or spaces, an NTFS stream, an 8.3 name, HFS-ignored code
    points)?"""
    if name.isascii() and name[:1] != "." and "~" not in name:
        return False  # the usual name, decided without folding (scans call this per file)
    folded = name.translate(_IGNORED_BY_HFS).casefold().split(":", 1)[0].rstrip(" .")
    return folded in RESERVED or _SHORT_NAME.fullmatch(folded) is not None


def encoding_problem(name: str) -> str | None:
    """Why `name` (as the OS gave it) cannot be recorded: pointer files, manifests and
    the metadata are UTF-8, and a name that is not cannot be written down."""
    if name.isascii():
        return None
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(name).decode("utf-8", "backslashreplace")
        return f"'{shown}' is not valid UTF-8, which pointer files and manifests need; rename it"
    return None


def name_problem(name: object) -> str | None:
    """Why `name` cannot be one entry of a directory, or None."""
    if not isinstance(name, str) or not name:
        return "is empty or not text"
    if name in (".", ".."):
        return f"is {name!r}, which names no entry of its own"
    if "/" in name:
        return "contains '/'; an entry names one file or directory"
    if "\0" in name:
        return "contains a NUL byte"
    if is_reserved(name):
        return f"is {name!r}, which is {_owner(name)}'s own directory"
    return None


def problem(path: object, root_ok: bool = False) -> str | None:
    """Why `path` (posix, relative to the workspace root) cannot name a place in the
    workspace, or None. `root_ok`: the root itself (``.``) is allowed."""
    if not isinstance(path, str) or not path:
        return "is empty or not text"
    if "\0" in path:
        return "contains a NUL byte"
    if path.startswith("/"):
        return "is absolute, outside the workspace (paths are relative to its root)"
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        depth = 0
        for part in parts:
            depth += -1 if part == ".." else 1
            if depth < 0:
                return "climbs out of the workspace with '..'"
        return "has a '..' component; write the path without it"
    if not parts and not root_ok:
        return "is the workspace root itself"
    for part in parts:
        if is_reserved(part):
            return f"is inside {part}/, which {_owner(part)} manages"
    return None


def normalise(path: str) -> str:
    """`path` without empty and ``.`` components (``.`` for the root)."""
    if path and "//" not in path and "/." not in path and path[0] not in "./" and path[-1] != "/":
        return path  # already normal, as nearly every path is (readers call this per out)
    return "/".join(p for p in path.split("/") if p not in ("", ".")) or "."


# What to do about a bad path from a file in a repository.
FROM_REPOSITORY = ("nothing was read or written there — fix or remove the entry (a "
                   "repository may only name paths inside its workspace)")


def clean(path: object, where: str, what: str = "path", root_ok: bool = False,
          advice: str = FROM_REPOSITORY) -> str:
    """`path` normalised, or a PathError: ``WHERE: WHAT 'PATH' <problem>; ADVICE``."""
    found = problem(path, root_ok)
    if found is not None:
        raise _error(where, what, path, found, advice)
    assert isinstance(path, str)
    return normalise(path)


def _owner(name: str) -> str:
    folded = name.translate(_IGNORED_BY_HFS).casefold()
    return "git" if "git" in folded else "Cairn"


def _error(where: str, what: str, path: object, found: str, advice: str) -> PathError:
    prefix = f"{where}: " if where else ""
    subject = f"{what} {path!r} " if what else ""
    return PathError(f"{prefix}{subject}{found}; {advice}", str(path))


class Root:
    """A workspace on disk: `check` keeps paths inside it through symlinks too."""

    def __init__(self, root: Path, objects_dir: Path | None = None) -> None:
        self.path = root
        self.real = os.path.realpath(root)
        # cache.type = symlink points workspace files at cache objects, wherever the cache is
        self.objects = os.path.realpath(objects_dir) if objects_dir is not None else None

    def check(self, rel: str, where: str = "", what: str = "path", root_ok: bool = False,
              advice: str = FROM_REPOSITORY) -> Path:
        """The absolute path of `rel` once both its text and the disk are safe."""
        rel = clean(rel, where, what, root_ok, advice)
        if rel != ".":
            self._check_disk(rel, where, what, advice)
        return self.path / rel if rel != "." else self.path

    def check_symlink(self, link: str) -> None:
        """PathError unless the symlink `link` (absolute, found inside a directory being
        scanned) points inside the workspace or at a cache object."""
        rel = os.path.relpath(link, self.path)
        self._check_link(link, rel, True, rel, (rel, "", "Cairn never reads through it — "
                                                  "remove it, or copy the file in"))

    def _check_disk(self, rel: str, where: str, what: str, advice: str) -> None:
        parts = rel.split("/")
        here = str(self.path)
        for i, part in enumerate(parts):
            here = f"{here}/{part}"
            try:
                st = os.lstat(here)
            except (FileNotFoundError, NotADirectoryError):
                return  # nothing deeper exists: what gets created is created inside
            last = i == len(parts) - 1
            if stat.S_ISLNK(st.st_mode):
                self._check_link(here, "/".join(parts[:i + 1]), last, rel,
                                 (where, what, advice))
            elif not last and not stat.S_ISDIR(st.st_mode):
                return  # a file where a directory would be: nothing deeper exists

    def _check_link(self, link: str, link_rel: str, last: bool, rel: str,
                    context: tuple[str, str, str]) -> None:
        target = os.path.realpath(link)
        if last and self.objects is not None and _within(target, self.objects):
            return
        inside = os.path.relpath(target, self.real)
        found = problem(inside, root_ok=True) if _within(target, self.real) else \
            "leaves the workspace"
        if found is not None:
            via = "is a symlink" if link_rel == rel else f"goes through the symlink {link_rel}"
            raise _error(context[0], context[1], rel, f"{via} to {target}, which "
                         f"{_strip(found)}", context[2])


def _within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _strip(found: str) -> str:
    return found.removeprefix("is ") if found.startswith("is inside") else found
