"""Small filesystem helpers with no Cairn imports: atomic replace, durable writes."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    import ctypes

COPY_CHUNK = 1 << 20


def syncfs(path: Path) -> None:
    """Flush every written byte of the filesystem holding `path` to stable storage.

    One call makes a whole batch of writes durable, where an fsync per file would cost
    a disk flush each (git's `core.fsyncMethod=batch` idea).
    """
    libc = _libc()
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc is None or libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


@functools.cache
def _libc() -> ctypes.CDLL | None:
    import ctypes  # only when a batch is made durable: most commands never need it

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syncfs  # noqa: B018 — only Linux has it
        return libc
    except (OSError, AttributeError):
        return None


def fsync_dir(path: Path) -> None:
    """Make a rename inside `path` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int = 0o644, durable: bool = True) -> None:
    """Replace `path` with `data`: temp file in the same directory, fsync, rename.

    A reader sees the old file or the new one, never a mix; a crash leaves the old one.
    `durable=False` skips the flushes, for a caller that flushes many files at once
    later (`sync_file`).
    """
    _replace_with(path, mode, lambda f: f.write(data), durable)


def atomic_copy(src: str | Path, dest: Path, mode: int = 0o644) -> None:
    """Replace `dest` with a copy of the file `src`, as `atomic_write` does with bytes."""
    import shutil

    def copy(f: BinaryIO) -> None:
        with open(src, "rb") as source:
            shutil.copyfileobj(source, f, COPY_CHUNK)

    _replace_with(dest, mode, copy)


def sync_file(path: Path) -> None:
    """Flush a file written with durable=False, and its rename, to disk."""
    fsync_dir(path)  # opening read-only and fsyncing works for a file as for a directory
    fsync_dir(path.parent)


def _replace_with(path: Path, mode: int, fill: Callable[[BinaryIO], object],
                  durable: bool = True) -> None:
    import tempfile  # not at import time: commands that write nothing never need it

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            fill(f)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if durable:
        fsync_dir(path.parent)


def list_dir(directory: str) -> list[os.DirEntry[str]]:
    """The entries of `directory`; none if it does not exist (yet)."""
    try:
        with os.scandir(directory) as entries:
            return list(entries)
    except (FileNotFoundError, NotADirectoryError):
        return []


def write_all(fd: int, data: bytes | memoryview) -> None:
    """os.write until every byte is written (a single call may write fewer)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def write_new(path: str, data: bytes | memoryview, mode: int, durable: bool,
              write: Callable[[int, bytes | memoryview], None] = write_all) -> None:
    """Create `path` (it must not exist) holding `data`; fsync it if `durable`.

    On any failure the half-written file is removed.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        write(fd, data)
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(path)
        raise
    os.close(fd)


class RenameBatch:
    """Temp files written without a flush of their own, made durable together.

    `flush` flushes the filesystem once (`syncfs`), renames every file to its final
    name, and flushes again — so nothing reaches its final name before its bytes are on
    disk, and the renames are durable before anything that names them is written (git's
    `core.fsyncMethod=batch`). Bounded by `limit`, so a killed run keeps most of its
    progress for the rerun.
    """

    def __init__(self, root: Path, limit: int) -> None:
        self.root = root
        self.limit = limit
        self._pending: list[tuple[str, str]] = []

    def add(self, tmp: str, final: str) -> None:
        self._pending.append((tmp, final))
        if len(self._pending) >= self.limit:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            syncfs(self.root)
            for tmp, final in pending:
                os.replace(tmp, final)
            syncfs(self.root)

    def discard(self) -> None:
        """Remove the temp files of a batch that will not be flushed."""
        for tmp, _ in self._pending:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        self._pending = []
