"""BLAKE3 digests of bytes and files, as lowercase hex."""

from __future__ import annotations

import os
import re
from pathlib import Path

import blake3

HASH_NAME = "blake3"
DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
# Below this size a plain read beats mmap and thread start-up.
MMAP_THRESHOLD = 4 << 20


def is_digest(value: object) -> bool:
    return isinstance(value, str) and DIGEST_RE.match(value) is not None


def hash_bytes(data: bytes | memoryview) -> str:
    return str(blake3.blake3(data).hexdigest())


def hash_file(path: str | os.PathLike[str], size: int | None = None) -> str:
    """Digest of a file's bytes; large files are hashed from a mmap on all cores."""
    if size is None:
        size = os.stat(path).st_size
    if size >= MMAP_THRESHOLD:
        hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
        hasher.update_mmap(os.fspath(path))
        return str(hasher.hexdigest())
    return hash_bytes(Path(path).read_bytes())
