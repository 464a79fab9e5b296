"""The object database: bytes named by their BLAKE3 digest.

Layout (docs/formats.md): ``<root>/objects/<oid[:2]>/<oid[2:]>``, read-only files;
``<root>/tmp/`` holds writes in progress; ``<root>/quarantine/`` holds objects that
failed verification. An object appears under its final name only after its bytes are
fully written and fsynced, so a crash never leaves a partial object there.
"""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cairn.errors import IntegrityError, ObjectNotFound, UserError
from cairn.fsutil import fsync_dir
from cairn.objects.hashing import hash_bytes, hash_file, is_digest
from cairn.objects.links import try_reflink

READ_ONLY = 0o444


def check_oid(oid: str) -> str:
    if not is_digest(oid):
        raise UserError(f"{oid!r} is not a BLAKE3 digest (64 lowercase hex characters)")
    return oid


@dataclass(frozen=True)
class ObjectDB:
    root: Path

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
        return self.oid_to_path(oid).is_file()

    def size(self, oid: str) -> int:
        try:
            return self.oid_to_path(oid).stat().st_size
        except FileNotFoundError:
            raise ObjectNotFound(oid) from None

    def new_tmp_path(self) -> Path:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        return self.tmp_dir / uuid.uuid4().hex

    # -- writing -------------------------------------------------------------------

    def install(self, tmp: Path, oid: str) -> None:
        """Move a fully written, fsynced temp file into place under `oid`."""
        final = self.oid_to_path(oid)
        if final.exists():
            tmp.unlink()
            return
        os.chmod(tmp, READ_ONLY)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
        fsync_dir(final.parent)

    def add_bytes(self, data: bytes) -> str:
        oid = hash_bytes(data)
        if self.exists(oid):
            return oid
        tmp = self.new_tmp_path()
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self.install(tmp, oid)
        return oid

    def add_file(self, src: Path, oid: str | None = None) -> tuple[str, int]:
        """Store a copy of `src`; return its digest and size.

        Hashes first (on all cores for big files), then copies only if the object is
        new — by reflink where the filesystem can, else in the kernel. A file that
        changes while being added is refused rather than stored under a wrong name.
        """
        before = os.stat(src)
        if oid is None:
            oid = hash_file(src, before.st_size)
        if self.exists(oid):
            return oid, before.st_size
        tmp = self.new_tmp_path()
        try:
            if not try_reflink(src, tmp):
                shutil.copyfile(src, tmp)
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

    def quarantine(self, oid: str) -> Path:
        """Move a corrupt object aside so nothing links it; `pull` fetches it again."""
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        target = self.quarantine_dir / oid
        os.replace(self.oid_to_path(oid), target)
        return target

    def is_protected(self, oid: str) -> bool:
        mode = self.oid_to_path(oid).stat().st_mode
        return not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
