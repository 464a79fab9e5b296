"""The object database: bytes named by their BLAKE3 digest.

Layout (docs/formats.md): ``<root>/objects/<oid[:2]>/<oid[2:]>``, read-only files;
``<root>/tmp/`` and ``*.tmp`` names beside objects hold writes in progress;
``<root>/quarantine/`` holds objects that failed verification. An object appears under
its final name only after its bytes are fully written and flushed to disk, so a crash
never leaves a partial object there.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from cairn.errors import IntegrityError, ObjectNotFound, UserError
from cairn.fsutil import RenameBatch, fsync_dir, write_new
from cairn.objects.hashing import hash_bytes, hash_file, is_digest
from cairn.objects.links import try_reflink

if TYPE_CHECKING:
    from cairn.objects.state import StatCache

READ_ONLY = 0o444


def check_oid(oid: str) -> str:
    if not is_digest(oid):
        raise UserError(f"{oid!r} is not a BLAKE3 digest (64 lowercase hex characters)")
    return oid


SMALL_FILE = 1 << 20  # read whole and hash in memory below this size
BATCH_OBJECTS = 4096  # objects written between two flushes inside `batch()`


class ObjectDB:
    """Objects under ``root``. Inside ``with odb.batch():`` small writes share one flush."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._batch: RenameBatch | None = None
        self._reflink_works: bool | None = None
        self._made_dirs: set[str] = set()

    def __repr__(self) -> str:
        return f"ObjectDB({str(self.root)!r})"

    @property
    def objects_dir(self) -> Path:
        return self.root / "objects"

    @property
    def tmp_dir(self) -> Path:
        return self.root / "tmp"

    @property
    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"

    def oid_to_path(self, oid: str) -> Path:
        check_oid(oid)
        return self.objects_dir / oid[:2] / oid[2:]

    def exists(self, oid: str) -> bool:
        return os.path.isfile(self.object_path(oid))

    def has(self, oid: str, size: int) -> bool:
        """Present with the expected size; a truncated leftover of a crash is not."""
        try:
            return os.stat(self.object_path(oid)).st_size == size
        except FileNotFoundError:
            return False

    def object_path(self, oid: str) -> str:
        """`oid_to_path` as a plain string: the hot paths of add, push and checkout."""
        check_oid(oid)
        return f"{self.root}/objects/{oid[:2]}/{oid[2:]}"

    def _ensure_dir(self, directory: str) -> None:
        if directory not in self._made_dirs:
            os.makedirs(directory, exist_ok=True)
            self._made_dirs.add(directory)

    def size(self, oid: str) -> int:
        try:
            return self.oid_to_path(oid).stat().st_size
        except FileNotFoundError:
            raise ObjectNotFound(oid) from None

    def new_tmp_path(self) -> Path:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        return self.tmp_dir / uuid.uuid4().hex

    # -- writing -------------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Write many objects, then make them durable with one filesystem flush.

        Objects reach their final names only after that flush, and a second flush makes
        the renames durable before the caller writes anything that names them.
        """
        if self._batch is not None:
            yield
            return
        self._batch = RenameBatch(self.objects_dir, BATCH_OBJECTS)
        try:
            yield
            self._batch.flush()
        finally:
            self._batch.discard()
            self._batch = None

    def install(self, tmp: Path | str, oid: str) -> None:
        """Move a fully written, fsynced temp file into place under `oid`."""
        final = self.object_path(oid)
        if self.has(oid, os.stat(tmp).st_size):
            os.unlink(tmp)
            return
        # Absent, or a truncated leftover of a crash: the good copy replaces it.
        os.chmod(tmp, READ_ONLY)
        self._ensure_dir(os.path.dirname(final))
        os.replace(tmp, final)
        fsync_dir(Path(final).parent)

    def _tmp_beside(self, oid: str) -> str:
        # A temp name in the object's own prefix directory: creating files in a small
        # directory is much cheaper than in one big tmp/, and the rename stays local.
        final = self.object_path(oid)
        self._ensure_dir(os.path.dirname(final))
        return f"{final}.{_unique()}.tmp"

    def _write_new(self, oid: str, data: bytes | memoryview) -> None:
        tmp = self._tmp_beside(oid)
        write_new(tmp, data, READ_ONLY, durable=self._batch is None)
        if self._batch is None:
            self.install(tmp, oid)
        else:  # created read-only beside its final name: a plain rename places it
            self._batch.add(tmp, self.object_path(oid))

    def put_verified(self, oid: str, data: bytes) -> None:
        """Store bytes the caller has already hashed to `oid` (a verified download)."""
        if not self.has(oid, len(data)):
            self._write_new(oid, data)

    def add_bytes(self, data: bytes) -> str:
        oid = hash_bytes(data)
        if not self.has(oid, len(data)):
            self._write_new(oid, data)
        return oid

    def add_file(self, src: Path | str, oid: str | None = None,
                 st: os.stat_result | None = None) -> tuple[str, int]:
        """Store a copy of `src`; return its digest and size.

        Small files are read once and hashed in memory. Large ones are hashed on all
        cores first and copied only if new — by reflink where the filesystem can, else
        in the kernel. A file that changes while being added is refused rather than
        stored under a wrong name.
        """
        before = st or os.stat(src)
        if before.st_size < SMALL_FILE:
            data = _read_small(src, before.st_size)
            oid = hash_bytes(data)
            if not self.has(oid, len(data)):
                self._write_new(oid, data)
            return oid, len(data)
        if oid is None:
            oid = hash_file(src, before.st_size)
        if self.has(oid, before.st_size):
            return oid, before.st_size
        tmp = self.new_tmp_path()
        try:
            self._copy(src, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            after = os.stat(src)
            if (after.st_mtime_ns, after.st_size) != (before.st_mtime_ns, before.st_size):
                raise IntegrityError(f"{src} changed while it was being added; add it again")
            self.install(tmp, oid)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return oid, before.st_size

    def _copy(self, src: Path | str, tmp: Path) -> None:
        if self._reflink_works is not False:
            self._reflink_works = try_reflink(src, tmp)
            if self._reflink_works:
                return
        shutil.copyfile(src, tmp)

    # -- reading -------------------------------------------------------------------

    def open(self, oid: str) -> BinaryIO:
        try:
            return open(self.oid_to_path(oid), "rb")
        except FileNotFoundError:
            raise ObjectNotFound(oid) from None

    def read_bytes(self, oid: str, verify: bool = True) -> bytes:
        with self.open(oid) as f:
            data = f.read()
        if verify and hash_bytes(data) != oid:
            raise IntegrityError(f"object {oid} is corrupt (its bytes hash differently); "
                                 "run `cairn fsck` then `cairn pull`", oid)
        return data

    def verify(self, oid: str) -> bool:
        path = self.oid_to_path(oid)
        try:
            return hash_file(path) == oid
        except FileNotFoundError:
            raise ObjectNotFound(oid) from None

    def all_oids(self) -> Iterator[str]:
        try:
            prefixes = os.scandir(self.objects_dir)
        except FileNotFoundError:
            return
        with prefixes:
            for prefix in prefixes:
                if len(prefix.name) != 2 or not prefix.is_dir():
                    continue
                with os.scandir(prefix.path) as entries:
                    for entry in entries:
                        oid = prefix.name + entry.name
                        if is_digest(oid):
                            yield oid

    # -- removing ------------------------------------------------------------------

    def remove(self, oid: str) -> None:
        self.oid_to_path(oid).unlink(missing_ok=True)

    def remove_leftovers(self) -> int:
        """Delete temp files that killed writers left; only under the repository lock."""
        leftovers = [e.path for d in _subdirs(self.objects_dir) for e in _entries(d)
                     if e.name.endswith(".tmp")]
        leftovers += [e.path for e in _entries(str(self.tmp_dir))]
        for path in leftovers:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        return len(leftovers)

    def quarantine(self, oid: str, state: StatCache | None = None) -> Path:
        """Move a corrupt object aside so nothing links it; `pull` fetches it again.
        `state`: the stat cache, which must not vouch for what lands there next."""
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        target = self.quarantine_dir / oid
        path = self.oid_to_path(oid)
        os.replace(path, target)
        if state is not None:
            state.forget([str(path)])
        return target

    def is_protected(self, oid: str) -> bool:
        mode = self.oid_to_path(oid).stat().st_mode
        return not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)


def _entries(directory: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as it:
            return [e for e in it if e.is_file(follow_symlinks=False)]
    except FileNotFoundError:
        return []


def _subdirs(directory: Path) -> list[str]:
    try:
        with os.scandir(directory) as it:
            return [e.path for e in it if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return []


_counter = itertools.count()


def _unique() -> str:
    # Unique among this host's writers (pid) and this process's (counter); cheaper than
    # uuid4's random bytes in a loop of ten thousand files.
    return f"{os.getpid():x}-{next(_counter):x}"


def _read_small(path: Path | str, size: int) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = [os.read(fd, size + 1)]  # one more byte than expected: did it grow?
        while chunks[-1]:
            chunks.append(os.read(fd, 1 << 20))
        return b"".join(chunks)
    finally:
        os.close(fd)
