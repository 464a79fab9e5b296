"""A remote: an fsspec filesystem and a base path that holds objects like the cache.

Layout (docs/formats.md), the same as the local cache::

    <base>/objects/<oid[:2]>/<oid[2:]>   an object, named by the BLAKE3 digest of its bytes
    <base>/tmp/<random>                  uploads in progress (filesystems with rename only)

Killed uploads leave temp files (and on S3 unfinished multipart uploads); `leftovers`
finds those nothing has written to for a day, for `cairn gc --cloud` to remove.

An object appears under its final name only once all its bytes are there: filesystems
(local, ssh) get a temp file that is renamed into place; object stores (S3, GCS, Azure)
show an object only when its single PUT or its multipart upload completes. Bytes are
hashed as they move, so a corrupt object is refused in either direction.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO, Protocol, TypeVar, cast

import blake3

from cairn.errors import CairnError, IntegrityError, ObjectNotFound, RemoteError
from cairn.fsutil import RenameBatch, write_all, write_new
from cairn.remotes import leftovers
from cairn.remotes.errors import missing_bucket, range_refused, translate_error
from cairn.remotes.leftovers import Leftover

CHUNK = 4 << 20
# Objects up to this size travel in one request, read into memory.
SINGLE_REQUEST_LIMIT = 16 << 20
# Uploads to a local remote are flushed and renamed into place this many at a time.
BATCH_OBJECTS = 2048
# Above this many objects, one listing of the remote beats a request per object.
FEW = 32

# Same rule as cairn.objects.hashing.is_digest; remotes may not import objects (layers).
_HEX = frozenset("0123456789abcdef")

T = TypeVar("T")
R = TypeVar("R")


def is_oid(value: str) -> bool:
    return len(value) == 64 and set(value) <= _HEX


class LocalObjects(Protocol):
    """What transfers need of the local object database (`cairn.objects.odb.ObjectDB`)."""

    def oid_to_path(self, oid: str) -> Path: ...

    def object_path(self, oid: str) -> str: ...

    def new_tmp_path(self) -> Path: ...

    def install(self, tmp: Path, oid: str) -> None: ...

    def put_verified(self, oid: str, data: bytes) -> None: ...

    def batch(self) -> AbstractContextManager[None]: ...

    def exists(self, oid: str) -> bool: ...


@dataclass
class Remote:
    name: str
    url: str  # as configured, for messages
    fs: Any  # an fsspec AbstractFileSystem
    base: str  # the remote's root inside `fs`
    scheme: str  # "file", "s3", "gs", "az", "ssh", "http", "memory", …
    jobs: int | None = None  # remote.NAME.jobs
    endpoint: str | None = None  # for messages about reaching it
    # Renames waiting for one flush of a local remote's filesystem (see `batch`).
    _pending: RenameBatch | None = field(default=None, init=False, repr=False)
    _made_dirs: set[str] = field(default_factory=set, init=False, repr=False)

    @property
    def read_only(self) -> bool:
        return self.scheme in ("http", "https")

    @property
    def renames(self) -> bool:
        """Writes go to a temp name then get renamed (filesystems, not object stores)."""
        return self.scheme in ("file", "ssh", "sftp", "memory")

    @property
    def objects_dir(self) -> str:
        return f"{self.base.rstrip('/')}/objects"

    def oid_to_path(self, oid: str) -> str:
        if not is_oid(oid):
            raise ValueError(f"{oid!r} is not a BLAKE3 digest")
        return f"{self.objects_dir}/{oid[:2]}/{oid[2:]}"

    def check_writable(self) -> None:
        if self.read_only:
            raise RemoteError(f"remote {self.name!r} ({self.url}) is read-only over HTTP; "
                              "push to an s3://, gs://, azure://, ssh:// or local remote "
                              "instead (`-r NAME`)", self.name)

    # -- asking what is there ------------------------------------------------------

    def exists(self, oid: str) -> bool:
        with self._talking("check for an object"):
            return bool(self.fs.exists(self.oid_to_path(oid)))

    def exists_many(self, oids: Iterable[str], jobs: int = 8) -> set[str]:
        """Which of `oids` the remote has: a request each when few, else one listing."""
        wanted = set(oids)
        if len(wanted) > FEW and not self.read_only:
            return wanted.intersection(self.list_oids())
        return {oid for oid, found in run_parallel(self.exists, sorted(wanted), jobs) if found}

    def list_oids(self) -> Iterator[str]:
        if self.scheme == "file":  # names from the directories, no stat per object
            yield from _local_oids(self.objects_dir)
            return
        for path in self._find():
            oid = oid_from_path(path)
            if oid is not None:
                yield oid

    def sizes(self, oids: Iterable[str] | None = None, jobs: int = 8) -> dict[str, int]:
        """Sizes in bytes of `oids` (default: every object) that the remote has."""
        wanted = None if oids is None else set(oids)
        if wanted is not None and len(wanted) <= FEW:
            found = run_parallel(self._size_or_none, sorted(wanted), jobs)
            return {oid: size for oid, size in found if isinstance(size, int)}
        listing = cast(dict[str, dict[str, Any]], self._find(detail=True))
        sizes = {}
        for path, info in listing.items():
            oid = oid_from_path(path)
            if oid is not None and info.get("type", "file") == "file":
                sizes[oid] = int(info.get("size") or 0)
        return sizes if wanted is None else {o: s for o, s in sizes.items() if o in wanted}

    def _size_or_none(self, oid: str) -> int | None:
        with self._talking("check an object's size"):
            try:
                return int(self.fs.size(self.oid_to_path(oid)))
            except FileNotFoundError as e:
                if missing_bucket(e):
                    raise
                return None

    def _find(self, detail: bool = False) -> Any:
        if self.read_only:
            raise RemoteError(f"remote {self.name!r} ({self.url}) is served over HTTP, "
                              "which cannot list objects", self.name)
        with self._talking("list objects"):
            try:
                return self.fs.find(self.objects_dir, detail=detail)
            except FileNotFoundError as e:
                if missing_bucket(e):
                    raise
                return {} if detail else []  # nothing pushed yet

    # -- moving bytes ----------------------------------------------------------------

    def upload(self, odb: LocalObjects, oid: str, replace: bool = False) -> int:
        """Copy cache object `oid` here, hashing it on the way; return its size.

        A cache object whose bytes do not hash to its name is refused (IntegrityError)
        and nothing appears on the remote. `replace`: a (corrupt) copy may already be
        there, and these bytes take its place.
        """
        self.check_writable()
        try:
            src = open(odb.object_path(oid), "rb")  # noqa: SIM115 - closed by `with` below
        except FileNotFoundError:
            raise ObjectNotFound(oid) from None
        with src, self._talking(f"upload object {oid}"):
            size = os.fstat(src.fileno()).st_size
            if self.scheme == "file" and size <= SINGLE_REQUEST_LIMIT:
                self._put_local(src, oid)
            elif self.renames:
                self._put_by_rename(src, oid, replace)
            elif size <= SINGLE_REQUEST_LIMIT:
                self._put_whole(src, oid)
            else:
                self._put_multipart(src, oid)
        return size

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Uploads to a local remote share one flush: temp files are written, the
        filesystem flushed once, all renamed into place, and flushed again — so no
        object is ever under its final name before its bytes are durable."""
        if self.scheme != "file" or self._pending is not None:
            yield
            return
        self._pending = RenameBatch(Path(self.objects_dir), BATCH_OBJECTS)
        try:
            yield
            with self._talking("finish uploads"):
                self._pending.flush()
        finally:
            self._pending.discard()
            self._pending = None

    def _put_local(self, src: BinaryIO, oid: str) -> None:
        data = src.read()
        check_cache_digest(str(blake3.blake3(data).hexdigest()), oid)
        final = self.oid_to_path(oid)
        tmp = f"{final}.{uuid.uuid4().hex[:12]}.tmp"  # beside it: a cheap, local rename
        directory = os.path.dirname(final)
        if directory not in self._made_dirs:
            os.makedirs(directory, exist_ok=True)
            self._made_dirs.add(directory)
        # Through this module's `write_all`, which the interrupted-push test slows down.
        write_new(tmp, data, 0o444, durable=self._pending is None, write=write_all)
        if self._pending is None:
            os.replace(tmp, final)
        else:
            self._pending.add(tmp, final)

    def _put_whole(self, src: BinaryIO, oid: str) -> None:
        data = src.read()
        check_cache_digest(str(blake3.blake3(data).hexdigest()), oid)
        self.fs.pipe_file(self.oid_to_path(oid), data)

    def _put_by_rename(self, src: BinaryIO, oid: str, replace: bool = False) -> None:
        tmp_dir = f"{self.base.rstrip('/')}/tmp"
        tmp = f"{tmp_dir}/{uuid.uuid4().hex}"
        final = self.oid_to_path(oid)
        self.fs.makedirs(tmp_dir, exist_ok=True)
        try:
            with self.fs.open(tmp, "wb") as out:
                digest, _ = copy_hashing(src, out)
                fsync_if_local(out)
            check_cache_digest(digest, oid)
            self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
            if replace and self.scheme != "file":  # SFTP's rename refuses an existing name
                with suppress(FileNotFoundError):
                    self.fs.rm_file(final)
            self.fs.mv(tmp, final)
        except BaseException:
            with suppress(Exception):
                self.fs.rm_file(tmp)
            raise

    def _put_multipart(self, src: BinaryIO, oid: str) -> None:
        # Not autocommitted: the object appears only if commit() is called.
        out = self.fs.open(self.oid_to_path(oid), "wb", autocommit=False)
        try:
            digest, _ = copy_hashing(src, out)
            out.close()
            check_cache_digest(digest, oid)
        except BaseException:
            with suppress(Exception):
                out.discard()
            raise
        out.commit()

    def download(self, odb: LocalObjects, oid: str) -> int:
        """Fetch `oid` into the cache, verifying its digest; return its size.

        A small object arrives in one request and is stored from memory (inside the
        caller's `odb.batch()`, without a flush of its own); a large one streams to a
        temp file. Either way only bytes that hash to `oid` are installed; otherwise
        IntegrityError and nothing is installed.
        """
        first = self._read_head(oid)
        if first is not None:
            self._check_download(str(blake3.blake3(first).hexdigest()), oid)
            odb.put_verified(oid, first)
            return len(first)
        tmp = odb.new_tmp_path()
        try:
            with open(tmp, "wb") as out:
                digest, size = self._read_into(oid, out)
                out.flush()
                os.fsync(out.fileno())
            self._check_download(digest, oid)
            odb.install(tmp, oid)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return size

    def _check_download(self, digest: str, oid: str) -> None:
        if digest != oid:
            raise IntegrityError(
                f"remote {self.name!r}: object {oid} is corrupt (its bytes hash to "
                f"{digest[:12]}…); nothing was installed — to replace it, run "
                f"`cairn fsck -r {self.name}` then `cairn push -r {self.name}` in a clone "
                "whose cache has a good copy", oid)

    def _read_head(self, oid: str) -> bytes | None:
        """The whole object if it is shorter than one chunk, else None (stream it)."""
        path = self.oid_to_path(oid)
        with self._talking(f"download object {oid}"):
            try:
                if self.scheme == "file":  # plain reads: no fsspec layers per object
                    with open(path, "rb") as f:
                        head = f.read(CHUNK)
                else:
                    head = bytes(self.fs.cat_file(path, start=0, end=CHUNK))
            except FileNotFoundError as e:
                if missing_bucket(e):
                    raise
                raise self._not_found(oid) from None
            except OSError as e:
                if not range_refused(e):
                    raise
                return None  # S3 refuses a range on an empty object: stream it
        return head if len(head) < CHUNK else None

    def _read_into(self, oid: str, out: BinaryIO) -> tuple[str, int]:
        path = self.oid_to_path(oid)
        with self._talking(f"download object {oid}"):
            try:
                return self._read_path_into(path, out)
            except FileNotFoundError as e:
                if missing_bucket(e):
                    raise
                raise self._not_found(oid) from None

    def _read_path_into(self, path: str, out: BinaryIO) -> tuple[str, int]:
        hasher = blake3.blake3()
        try:
            # One ranged GET fetches a small object whole, without a HEAD first.
            first = bytes(self.fs.cat_file(path, start=0, end=CHUNK))
        except OSError as e:
            if not range_refused(e):
                raise
            first = b""  # S3 refuses a range on an empty object; stream it instead
        else:
            hasher.update(first)
            out.write(first)
            if len(first) != CHUNK:  # short (or a server ignoring ranges): all of it
                return str(hasher.hexdigest()), len(first)
        with self.fs.open(path, "rb") as src:
            src.seek(len(first))
            _, rest = copy_hashing(src, out, hasher)
        return str(hasher.hexdigest()), len(first) + rest

    def open(self, oid: str) -> BinaryIO:
        """A readable file of the object's bytes, unverified (for `cairn fsck --remote`)."""
        with self._talking(f"read object {oid}"):
            try:
                return cast(BinaryIO, self.fs.open(self.oid_to_path(oid), "rb"))
            except FileNotFoundError as e:
                if missing_bucket(e):
                    raise
                raise self._not_found(oid) from None

    def remove(self, oids: Iterable[str]) -> None:
        """Delete objects; ones already gone are fine."""
        self.check_writable()
        paths = [self.oid_to_path(oid) for oid in oids]
        if not paths:
            return
        with self._talking("delete objects"):
            if self.renames:
                for path in paths:
                    with suppress(FileNotFoundError):
                        self.fs.rm_file(path)
            else:
                self.fs.rm(paths)  # object stores delete in batches

    def leftovers(self, older_than: float) -> list[Leftover]:
        """Temp files and unfinished uploads last written before `older_than` (epoch
        seconds): what killed pushes left, never a live push's (see `leftovers`)."""
        if self.read_only:
            return []
        with self._talking("list temp files"):
            return leftovers.find(self, older_than)

    def remove_leftovers(self, found: Iterable[Leftover]) -> None:
        self.check_writable()
        with self._talking("delete temp files"):
            leftovers.remove(self, list(found))

    # -- errors ----------------------------------------------------------------------

    def _not_found(self, oid: str) -> ObjectNotFound:
        return ObjectNotFound(oid, f"remote {self.name!r}; push it there from a clone "
                                   "whose cache has it")

    @contextmanager
    def _talking(self, doing: str) -> Iterator[None]:
        """Turn filesystem, network and cloud errors into one-line RemoteErrors."""
        try:
            yield
        except CairnError:
            raise
        except Exception as e:
            translated = translate_error(self, e, doing)
            if translated is None:
                raise
            raise translated from e


# -- helpers shared with transfer -------------------------------------------------------


def oid_from_path(path: str) -> str | None:
    """The oid named by ``…/objects/ab/cdef…``, or None for anything else there."""
    parts = path.rstrip("/").rsplit("/", 2)
    if len(parts) < 3 or len(parts[1]) != 2:
        return None
    oid = parts[1] + parts[2]
    return oid if is_oid(oid) else None


def _local_oids(objects_dir: str) -> Iterator[str]:
    try:
        prefixes = [e for e in os.scandir(objects_dir) if len(e.name) == 2 and e.is_dir()]
    except FileNotFoundError:
        return  # nothing pushed yet
    for prefix in prefixes:
        with os.scandir(prefix.path) as entries:
            for entry in entries:
                oid = prefix.name + entry.name
                if is_oid(oid):
                    yield oid


class LazyFileSystem:
    """Builds the fsspec filesystem on first use: local remotes often never need it,
    and importing fsspec is a good part of a no-op push."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self._make = make
        self._fs: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._fs is None:
            self._fs = self._make()
        return getattr(self._fs, name)


def check_cache_digest(digest: str, oid: str) -> None:
    if digest != oid:
        raise IntegrityError(f"cache object {oid} is corrupt (its bytes hash to {digest[:12]}…); "
                             "it was not pushed — run `cairn fsck`, then re-add or pull it", oid)


def copy_hashing(src: Any, out: Any, hasher: Any = None) -> tuple[str, int]:
    """Copy `src` to `out` in chunks, hashing as we go; return (digest, bytes copied)."""
    hasher = hasher if hasher is not None else blake3.blake3()
    copied = 0
    while chunk := src.read(CHUNK):
        hasher.update(chunk)
        out.write(chunk)
        copied += len(chunk)
    return str(hasher.hexdigest()), copied


def fsync_if_local(f: Any) -> None:
    """Make a local temp file durable before its rename; other backends decide themselves."""
    try:
        fd = f.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return
    f.flush()
    os.fsync(fd)


def run_parallel(fn: Callable[[T], R], items: Iterable[T], jobs: int,
                 per_item: tuple[type[BaseException], ...] = ()
                 ) -> Iterator[tuple[T, R | BaseException]]:
    """Apply `fn` on `jobs` threads; yield (item, result) as each finishes.

    Exceptions of the `per_item` types are yielded in place of a result; any other stops
    the run: queued work is cancelled and the exception raised. At most 2 * jobs items are
    in flight, so millions of objects do not mean millions of futures.
    """
    if jobs <= 1:  # in this thread: no hand-off per item
        for item in items:
            try:
                yield item, fn(item)
            except per_item as e:
                yield item, e
        return
    todo = iter(items)
    pool = ThreadPoolExecutor(max_workers=jobs)
    pending: dict[Future[R], T] = {}
    try:
        for item in islice(todo, 2 * jobs):
            pending[pool.submit(fn, item)] = item
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                item = pending.pop(future)
                for following in islice(todo, 1):
                    pending[pool.submit(fn, following)] = following
                try:
                    yield item, future.result()
                except per_item as e:
                    yield item, e
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
