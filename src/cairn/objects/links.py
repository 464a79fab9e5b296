"""Put a cache object into the workspace: reflink, hardlink, symlink or copy.

The workspace file is replaced atomically (temp name beside it, then rename).
Hardlinks and symlinks share the cache's read-only inode, so an editor cannot write
through them into the cache; `cairn unprotect` swaps them for a writable copy.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

import blake3

from cairn.errors import IntegrityError
from cairn.fsutil import write_new

LINK_TYPES = ("reflink", "hardlink", "symlink", "copy")
DEFAULT_LINK_TYPES = ("reflink", "copy")
FICLONE = 0x40049409  # linux/fs.h
COPY_CHUNK = 4 << 20  # read, hashed and written per step (measured best of 1-64 MiB)


def parse_link_types(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if not value:
        return DEFAULT_LINK_TYPES
    items = value.split(",") if isinstance(value, str) else list(value)
    types = tuple(t.strip() for t in items if t.strip())
    unknown = [t for t in types if t not in LINK_TYPES]
    if unknown or not types:
        raise ValueError(f"unknown link type {unknown or value!r}; "
                         f"choose from {', '.join(LINK_TYPES)}")
    return types


def try_reflink(src: Path | str, dst: Path) -> bool:
    """Clone `src` to a new file `dst` sharing its blocks; False where unsupported."""
    try:
        with open(src, "rb") as s, open(dst, "wb") as d:
            fcntl.ioctl(d.fileno(), FICLONE, s.fileno())
        return True
    except OSError as e:
        dst.unlink(missing_ok=True)
        if e.errno in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY, errno.EPERM,
                       errno.ENOSYS, errno.EBADF):
            return False
        raise


def _make(kind: str, src: Path | str, tmp: Path, mode: int, oid: str | None) -> bool:
    if kind == "reflink":
        if not try_reflink(src, tmp):
            return False
        os.chmod(tmp, mode)
        return True
    try:
        if kind == "hardlink":
            os.link(src, tmp)
        elif kind == "symlink":
            os.symlink(src, tmp)
        elif oid is not None:
            copy_verified(src, tmp, oid)
            os.chmod(tmp, mode)
        else:
            shutil.copyfile(src, tmp)
            os.chmod(tmp, mode)
    except OSError as e:
        if kind != "copy" and e.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            return False
        raise
    return True


def link(src: Path | str, dst: Path, types: Sequence[str], mode: int = 0o644,
         oid: str | None = None) -> str:
    """Make `dst` show the bytes of cache object `src`; return the link type used.

    With `oid`, a copy is hashed as it is made and refused (IntegrityError, `dst`
    untouched) unless its bytes are `oid`'s; links share the object's bytes, which the
    caller verifies or vouches for through the stat cache.
    """
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.parent / f".{dst.name}.{uuid.uuid4().hex[:12]}.cairn-tmp"
    for kind in types:
        try:
            if _make(kind, src, tmp, mode, oid):
                os.replace(tmp, dst)
                return kind
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    raise OSError(f"none of the link types {', '.join(types)} works for {dst}")


def copy_verified(src: Path | str, dst: Path | str, oid: str) -> None:
    """Copy `src` to the new file `dst`, hashing the bytes on the way: one read both
    copies and verifies. IntegrityError (and no `dst`) if they are not `oid`'s."""
    hasher = blake3.blake3()
    buffer = bytearray(COPY_CHUNK)  # one buffer, refilled: no allocation per chunk
    view = memoryview(buffer)
    with open(src, "rb", buffering=0) as source, open(dst, "xb") as out:  # writes all
        while size := source.readinto(buffer):
            hasher.update(view[:size])
            out.write(view[:size])
    if hasher.hexdigest() != oid:
        os.unlink(dst)
        raise IntegrityError(f"cache object {oid} is corrupt (its bytes hash differently); "
                             "run `cairn fsck`, then `cairn pull` a good copy", oid)


def write_copy(dst: Path, data: bytes, mode: int = 0o644) -> None:
    """Put bytes already read (and verified) from the cache at `dst`: a copy without
    reading the object twice. Replaced atomically like every other link."""
    tmp = dst.parent / f".{dst.name}.{uuid.uuid4().hex[:12]}.cairn-tmp"
    dst.parent.mkdir(parents=True, exist_ok=True)
    # Not fsynced: the cache holds the durable copy; the workspace is a view of it.
    write_new(str(tmp), data, mode, durable=False)
    os.replace(tmp, dst)


def is_linked(path: Path) -> bool:
    """True if `path` shares the cache's read-only bytes (hardlink or symlink)."""
    st = path.lstat()
    return path.is_symlink() or st.st_nlink > 1


def unprotect(path: Path) -> None:
    """Replace a hardlink/symlink to the cache by a private writable copy."""
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.cairn-tmp"
    shutil.copyfile(path, tmp)  # follows a symlink to the object
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
