"""A tracked path: what Cairn records of one file or directory it versions.

A pointer file's outs, a `cairn.lock`'s deps and outs and a run-cache entry's outs are
all `TrackedPath`s. Read from a file — someone else's writing — a record becomes one only
through `TrackedPath.parse`, the one place its fields are checked (the path by
`cairn.paths`); each file format words the error for its own readers.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cairn import paths
from cairn.objects.hashing import HASH_NAME, is_digest


class InvalidField(ValueError):
    """One field of a record is unusable: `key`, and `why` (``{key} {why}`` reads)."""

    def __init__(self, key: str, why: str) -> None:
        super().__init__(f"{key} {why}")
        self.key, self.why = key, why


@dataclass(frozen=True)
class TrackedPath:
    # posix; relative to the pointer file's directory, or to the root (locks, run cache)
    path: str
    digest: str  # blake3 of the file, or of the directory manifest
    size: int
    nfiles: int | None = None  # directories only
    cache: bool = True  # False: git keeps it, not the cache (a lock's `cache: false` out)
    # keys this Cairn does not know, kept when the file is rewritten
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_dir(self) -> bool:
        return self.nfiles is not None

    @classmethod
    def parse(cls, path: object, digest: object, size: object, nfiles: object = None,
              cache: object = True, base: str = "",
              extra: Mapping[str, Any] | None = None) -> TrackedPath:
        """The record as read from a file, checked; InvalidField names the first bad field.

        `path` is relative to `base` (a root-relative directory whose files may name
        ``../x``; "" for none): see `root_relative`.
        """
        root_rel = root_relative(path, base)
        if not isinstance(digest, str) or not is_digest(digest):
            raise InvalidField("digest", f"{digest!r} is not a {HASH_NAME} digest")
        if not isinstance(size, int) or size < 0:
            raise InvalidField("size", "must be a non-negative integer")
        if nfiles is not None and (not isinstance(nfiles, int) or nfiles < 0):
            raise InvalidField("nfiles", "must be a non-negative integer")
        if not isinstance(cache, bool):
            raise InvalidField("cache", "must be true or false")
        return cls(root_rel, digest, size, nfiles, cache, {} if extra is None else extra)


def root_relative(path: object, base: str = "") -> str:
    """`path`, written relative to `base`, joined to it and normalised once `cairn.paths`
    finds it names a place in the workspace; InvalidField("path", …) if it does not."""
    if not isinstance(path, str) or not path:
        raise InvalidField("path", "is missing or not a string")
    joined = posixpath.normpath(posixpath.join(base, path)) if base else path
    found = paths.problem(joined)
    if found is not None:
        raise InvalidField("path", f"{path!r} {found}")
    return paths.normalise(joined)
