"""The object database: bytes named by their BLAKE3 digest, in any fsspec filesystem.

Layout (docs/formats.md), the same for the local cache and every remote::

    <path>/objects/<oid[:2]>/<oid[2:]>                 an object, read-only
    <path>/objects/<oid[:2]>/<oid[2:]>.<random>.tmp    a local write in progress
    <path>/tmp/<random>                                larger writes in progress
    <path>/quarantine/<oid>                            (the cache) objects that failed
                                                       verification

An object appears under its final name only once all its bytes are there and durable:
filesystems get a temp file that is renamed into place; object stores (S3, GCS, Azure)
show an object only when its single PUT or its multipart upload completes.

The local filesystem takes a fast path: plain os calls instead of fsspec (importing
fsspec is a good part of a no-op push), and one flush for a batch of small writes.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import shutil
import stat
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import blake3

from cairn.errors import (
    CairnError,
    IntegrityError,
    NotFoundError,
    ObjectArchived,
    ObjectNotFound,
    RemoteError,
    UserError,
)
from cairn.fsutil import RenameBatch, fsync_dir, list_dir, write_all, write_new
from cairn.objects.backend_errors import missing_bucket, needs_restore, range_refused
from cairn.objects.hashing import hash_bytes, hash_file, is_digest
from cairn.objects.links import try_reflink
from cairn.objects.parallel import run_parallel

if TYPE_CHECKING:
    from cairn.objects.state import StatCache

READ_ONLY = 0o444
SMALL_FILE = 1 << 20  # read whole and hash in memory below this size (add)
BATCH_OBJECTS = 4096  # objects written between two flushes inside `batch()`
# Objects shorter than this travel whole, in memory and one request; longer ones stream.
CHUNK = 4 << 20
# Above this many objects, one listing of a remote beats a request per object.
FEW = 32
RENAMING = ("file", "ssh", "sftp", "memory")  # filesystems: write a temp name, rename it
READ_ONLY_SCHEMES = ("http", "https")

# Turns a filesystem, network or cloud error into a one-line CairnError (None: a bug).
Explain = Callable[["ObjectDB", Exception, str], CairnError | None]


def check_oid(oid: str) -> str:
    if not is_digest(oid):
        raise UserError(f"{oid!r} is not a BLAKE3 digest (64 lowercase hex characters)")
    return oid


class LazyFileSystem:
    """Builds the fsspec filesystem on first use: local stores rarely need it."""

    def __init__(self, make: Callable[[], Any], protocol: str) -> None:
        self._make = make
        self._fs: Any = None
        self.protocol = protocol

    def __getattr__(self, name: str) -> Any:
        if self._fs is None:
            self._fs = self._make()
        return getattr(self._fs, name)


def _local_filesystem() -> Any:
    from fsspec.implementations.local import LocalFileSystem

    return LocalFileSystem()


UNLINK_THREADS = 8
MANY_UNLINKS = 1000


def _unlink_all(paths: list[str]) -> None:
    """Unlink, on a few threads when there are many: each journaled unlink of a file on
    disk waits ~100 µs, and several wait at once (1.5x for 50,000 objects here)."""

    def unlink(part: list[str]) -> None:
        for path in part:
            with suppress(FileNotFoundError):
                os.unlink(path)

    if len(paths) < MANY_UNLINKS:
        unlink(paths)
        return
    parts = [paths[i::UNLINK_THREADS] for i in range(UNLINK_THREADS)]
    for _, _done in run_parallel(unlink, parts, UNLINK_THREADS):
        pass


class ObjectDB:
    """Objects under `path` in the fsspec filesystem `fs`: the cache, or a remote.

    `name` is the remote's ("": this clone's cache) and `url` as configured, for
    messages, as are `endpoint` and `explain`. Inside ``with odb.batch():`` small
    local writes share one flush.
    """

    def __init__(self, fs: Any, path: str | Path, *, name: str = "",
                 url: str | None = None, scheme: str | None = None, jobs: int | None = None,
                 endpoint: str | None = None, explain: Explain | None = None) -> None:
        self.fs = fs
        self.path = str(path).rstrip("/") or "/"
        self.root = Path(self.path)
        self.scheme = scheme or _protocol(fs)
        self.is_local = self.scheme == "file"
        self.name, self.url, self.jobs, self.endpoint = name, url or self.path, jobs, endpoint
        self._explain = explain
        self._batch: RenameBatch | None = None
        self._reflink_works: bool | None = None
        self._made_dirs: set[str] = set()

    @classmethod
    def local(cls, root: str | Path) -> ObjectDB:
        """The object database in a local directory (a cache)."""
        return cls(LazyFileSystem(_local_filesystem, "file"), root)

    def __repr__(self) -> str:
        return f"ObjectDB({self.scheme!r}, {self.path!r})"

    @property
    def label(self) -> str:
        """Where the objects are, for messages."""
        return f"remote {self.name!r}" if self.name else "the cache"

    @property
    def read_only(self) -> bool:
        return self.scheme in READ_ONLY_SCHEMES

    @property
    def renames(self) -> bool:
        """Writes go to a temp name then get renamed (filesystems, not object stores)."""
        return self.scheme in RENAMING

    @property
    def objects_dir(self) -> str:
        return f"{self.path}/objects"

    @property
    def tmp_dir(self) -> str:
        return f"{self.path}/tmp"

    @property
    def quarantine_dir(self) -> Path:
        return self.root / "quarantine"

    def oid_to_path(self, oid: str) -> str:
        check_oid(oid)
        return f"{self.path}/objects/{oid[:2]}/{oid[2:]}"

    def check_writable(self) -> None:
        if self.read_only:
            raise RemoteError(f"{self.label} ({self.url}) is read-only over HTTP; "
                              "push to an s3://, gs://, azure://, ssh:// or local remote "
                              "instead (`-r NAME`)", self.name)

    # -- asking what is there ------------------------------------------------------

    def exists(self, oid: str) -> bool:
        if self.is_local:
            return os.path.isfile(self.oid_to_path(oid))
        with self.talking("check for an object"):
            return bool(self.fs.exists(self.oid_to_path(oid)))

    def has(self, oid: str, size: int) -> bool:
        """Present with the expected size; a truncated leftover of a crash is not."""
        return self._size_or_none(oid) == size

    def size(self, oid: str) -> int:
        found = self._size_or_none(oid)
        if found is None:
            raise self._not_found(oid)
        return found

    def _size_or_none(self, oid: str) -> int | None:
        path = self.oid_to_path(oid)
        if self.is_local:
            try:
                return os.stat(path).st_size
            except FileNotFoundError:
                return None
        with self.talking("check an object's size"):
            try:
                return int(self.fs.size(path))
            except FileNotFoundError as e:
                if missing_bucket(e):
                    raise
                return None

    def exists_many(self, oids: Iterable[str], jobs: int = 8) -> set[str]:
        """Which of `oids` are here: a question each when few or local, else one listing."""
        wanted = set(oids)
        if self.is_local:
            return {oid for oid in wanted if self.exists(oid)}
        if len(wanted) > FEW and not self.read_only:
            return wanted.intersection(self.list_oids())
        return {oid for oid, found in run_parallel(self.exists, sorted(wanted), jobs) if found}

    def list_oids(self) -> Iterator[str]:
        """Every object here, from one listing (locally: names only, no stat each)."""
        if not self.is_local:
            yield from (oid for oid in map(oid_from_path, self._find()) if oid is not None)
            return
        for prefix in list_dir(self.objects_dir):
            if len(prefix.name) == 2 and prefix.is_dir():
                for entry in list_dir(prefix.path):
                    oid = prefix.name + entry.name
                    if is_digest(oid):  # temp names are never taken for objects
                        yield oid

    def sizes(self, oids: Iterable[str] | None = None, jobs: int = 8) -> dict[str, int]:
        """Sizes in bytes of `oids` (default: every object) that are here."""
        wanted = None if oids is None else set(oids)
        if self.is_local or (wanted is not None and len(wanted) <= FEW):
            ask = self.list_oids() if wanted is None else sorted(wanted)
            found = run_parallel(self._size_or_none, ask, 1 if self.is_local else jobs)
            return {oid: size for oid, size in found if isinstance(size, int)}
        sizes: dict[str, int] = {}
        for path, info in cast(dict[str, dict[str, Any]], self._find(detail=True)).items():
            oid = oid_from_path(path)
            if oid is not None and info.get("type", "file") == "file":
                sizes[oid] = int(info.get("size") or 0)
        return sizes if wanted is None else {o: s for o, s in sizes.items() if o in wanted}

    def _find(self, detail: bool = False) -> Any:
        if self.read_only:
            raise RemoteError(f"{self.label} ({self.url}) is served over HTTP, which "
                              "cannot list objects", self.name)
        with self.talking("list objects"):
            try:
                return self.fs.find(self.objects_dir, detail=detail)
            except FileNotFoundError as e:
                if missing_bucket(e):
                    raise
                return {} if detail else []  # nothing written yet

    # -- reading -------------------------------------------------------------------

    def open(self, oid: str) -> BinaryIO:
        """A readable file of the object's bytes, unverified."""
        path = self.oid_to_path(oid)
        with self.talking(f"read object {oid}"), self._not_found_as_error(oid):
            if self.is_local:
                try:  # an object is a regular file Cairn wrote: a symlink there was planted
                    return os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb")
                except OSError as e:
                    if e.errno != errno.ELOOP:
                        raise
                    raise IntegrityError(f"{self.label}: object {oid} is a symlink, not a "
                                         "file Cairn wrote; it was not followed — run "
                                         "`cairn fsck`", oid) from None
            return cast(BinaryIO, self.fs.open(path, "rb"))

    def read_bytes(self, oid: str, verify: bool = True) -> bytes:
        with self.open(oid) as f:
            data = f.read()
        if verify and hash_bytes(data) != oid:
            raise IntegrityError(f"object {oid} is corrupt (its bytes hash differently); "
                                 "run `cairn fsck` then `cairn pull`", oid)
        return data

    def verify(self, oid: str) -> bool:
        if not self.is_local:  # the reads too: an archived object fails on the first one
            with self.talking(f"read object {oid}"), self._not_found_as_error(oid), \
                    self.open(oid) as f:
                return copy_hashing(f, None)[0] == oid
        with self._not_found_as_error(oid):
            return hash_file(self.oid_to_path(oid)) == oid

    def read_head(self, oid: str) -> bytes | None:
        """The whole object if it is shorter than CHUNK, else None (stream it)."""
        path = self.oid_to_path(oid)
        with self.talking(f"download object {oid}"), self._not_found_as_error(oid):
            if self.is_local:  # plain reads: no fsspec layers per object
                with open(path, "rb") as f:
                    if os.fstat(f.fileno()).st_size >= CHUNK:
                        return None
                    return f.read()  # read(CHUNK) would allocate CHUNK bytes each time
            try:
                head = bytes(self.fs.cat_file(path, start=0, end=CHUNK))
            except OSError as e:
                if not range_refused(e):
                    raise
                return None  # S3 refuses a range on an empty object: stream it
        return head if len(head) < CHUNK else None

    def read_into(self, oid: str, out: Any) -> tuple[str, int]:
        """Copy the object's bytes to `out`, hashing them; return (digest, size)."""
        path = self.oid_to_path(oid)
        with self.talking(f"download object {oid}"), self._not_found_as_error(oid):
            if not self.is_local:
                return self._read_remote_into(path, out)
            with open(path, "rb") as src:
                return copy_hashing(src, out)

    def _read_remote_into(self, path: str, out: Any) -> tuple[str, int]:
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

    # -- writing -------------------------------------------------------------------

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Write many local objects, then make them durable with one filesystem flush.

        Objects reach their final names only after that flush, and a second flush makes
        the renames durable before the caller writes anything that names them.
        """
        if not self.is_local or self._batch is not None:
            yield
            return
        self._batch = RenameBatch(Path(self.objects_dir), BATCH_OBJECTS)
        try:
            yield
            with self.talking("finish uploads"):
                self._batch.flush()
        finally:
            self._batch.discard()
            self._batch = None

    def put_verified(self, oid: str, data: bytes, replace: bool = False) -> None:
        """Store bytes the caller has already hashed to `oid`. `replace`: a (corrupt)
        copy may be there, and these bytes take its place."""
        self.check_writable()
        if self.is_local:
            if replace or not self.has(oid, len(data)):
                with self.talking(f"upload object {oid}"):
                    self._write_new(oid, data)
        elif self.renames:
            with self.receive(oid, replace) as out:
                out.write(data)
        else:
            with self.talking(f"upload object {oid}"):
                self.fs.pipe_file(self.oid_to_path(oid), data)

    @contextmanager
    def receive(self, oid: str, replace: bool = False) -> Iterator[BinaryIO]:
        """A file to write `oid`'s bytes into; they appear under its name only if the
        `with` body completes (it checks their digest), else nothing appears."""
        self.check_writable()
        with self.talking(f"upload object {oid}"), self._receive(oid, replace) as out:
            yield out

    @contextmanager
    def _receive(self, oid: str, replace: bool) -> Iterator[BinaryIO]:
        if self.is_local:
            with self._receive_local(oid) as out:
                yield out
        elif self.renames:
            with self._receive_by_rename(oid, replace) as out:
                yield out
        else:
            # Not autocommitted: the object appears only if commit() is called.
            out = self.fs.open(self.oid_to_path(oid), "wb", autocommit=False)
            try:
                yield out
                out.close()
            except BaseException:
                with suppress(Exception):
                    out.discard()
                raise
            out.commit()

    @contextmanager
    def _receive_local(self, oid: str) -> Iterator[BinaryIO]:
        tmp = self.new_tmp_path()
        try:
            with open(tmp, "wb") as out:
                yield out
                out.flush()
                os.fsync(out.fileno())
            self.install(tmp, oid, replace=True)  # verified bytes: whatever is there goes
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    @contextmanager
    def _receive_by_rename(self, oid: str, replace: bool) -> Iterator[BinaryIO]:
        tmp = f"{self.tmp_dir}/{uuid.uuid4().hex}"
        final = self.oid_to_path(oid)
        self.fs.makedirs(self.tmp_dir, exist_ok=True)
        try:
            with self.fs.open(tmp, "wb") as out:
                yield out
                _fsync_if_local(out)
            self.fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
            if replace:  # SFTP's rename refuses an existing name
                with suppress(FileNotFoundError):
                    self.fs.rm_file(final)
            self.fs.mv(tmp, final)
        except BaseException:
            with suppress(Exception):
                self.fs.rm_file(tmp)
            raise

    def new_tmp_path(self) -> Path:
        os.makedirs(self.tmp_dir, exist_ok=True)
        return Path(self.tmp_dir) / uuid.uuid4().hex

    def install(self, tmp: Path | str, oid: str, replace: bool = False) -> None:
        """Move a fully written, fsynced local temp file into place under `oid`."""
        final = self.oid_to_path(oid)
        if not replace and self.has(oid, os.stat(tmp).st_size):
            os.unlink(tmp)
            return
        # Absent, or a truncated leftover of a crash: the good copy replaces it.
        os.chmod(tmp, READ_ONLY)
        self._ensure_dir(os.path.dirname(final))
        os.replace(tmp, final)
        fsync_dir(Path(final).parent)

    def _ensure_dir(self, directory: str) -> None:
        if directory not in self._made_dirs:
            os.makedirs(directory, exist_ok=True)
            self._made_dirs.add(directory)

    def _write_new(self, oid: str, data: bytes | memoryview) -> None:
        # A temp name in the object's own prefix directory: creating files in a small
        # directory is much cheaper than in one big tmp/, and the rename stays local.
        final = self.oid_to_path(oid)
        self._ensure_dir(os.path.dirname(final))
        tmp = f"{final}.{_unique()}.tmp"
        # Through this module's `write_all`, which the interrupted-push test slows down.
        write_new(tmp, data, READ_ONLY, durable=self._batch is None, write=write_all)
        if self._batch is not None:  # created read-only beside its final name
            self._batch.add(tmp, final)
        else:
            os.replace(tmp, final)
            fsync_dir(Path(final).parent)

    def add_bytes(self, data: bytes) -> str:
        oid = hash_bytes(data)
        self.put_verified(oid, data)
        return oid

    def add_file(self, src: Path | str, oid: str | None = None,
                 st: os.stat_result | None = None) -> tuple[str, int]:
        """Store a copy of local file `src` here (a local store); return digest and size.

        Small files are read once and hashed in memory. Large ones are hashed on all
        cores first and copied only if new — by reflink where the filesystem can, else
        in the kernel. A file that changes while being added is refused rather than
        stored under a wrong name.
        """
        before = st or os.stat(src)
        if before.st_size < SMALL_FILE:
            data = _read_small(src, before.st_size)
            return self.add_bytes(data), len(data)
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

    # -- removing ------------------------------------------------------------------

    def remove(self, oids: Iterable[str]) -> None:
        """Delete objects; ones already gone are fine."""
        self.check_writable()
        paths = [self.oid_to_path(oid) for oid in oids]
        if not paths:
            return
        with self.talking("delete objects"):
            if self.is_local:
                _unlink_all(paths)
            elif self.renames:
                for path in paths:
                    with suppress(FileNotFoundError):
                        self.fs.rm_file(path)
            else:
                self.fs.rm(paths)  # object stores delete in batches

    def remove_leftovers(self) -> int:
        """Delete the local temp files killed writers left; only under the repository
        lock (remotes: see cairn.remotes.leftovers)."""
        leftovers = [e.path for d in list_dir(self.objects_dir) if d.is_dir(follow_symlinks=False)
                     for e in list_dir(d.path)
                     if e.name.endswith(".tmp") and e.is_file(follow_symlinks=False)]
        leftovers += [e.path for e in list_dir(self.tmp_dir) if e.is_file(follow_symlinks=False)]
        for path in leftovers:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        return len(leftovers)

    def quarantine(self, oid: str, state: StatCache | None = None) -> Path:
        """Move a corrupt local object aside so nothing links it; `pull` fetches it again.
        `state`: the stat cache, which must not vouch for what lands there next."""
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        target = self.quarantine_dir / oid
        path = self.oid_to_path(oid)
        os.replace(path, target)
        if state is not None:
            state.forget([path])
        return target

    def is_protected(self, oid: str) -> bool:
        mode = os.stat(self.oid_to_path(oid)).st_mode
        return not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)

    # -- errors ----------------------------------------------------------------------

    def talking(self, doing: str) -> AbstractContextManager[None]:
        """Turn filesystem, network and cloud errors into one-line errors, for a remote."""
        return nullcontext() if self._explain is None else self._explaining(doing)

    @contextmanager
    def _explaining(self, doing: str) -> Iterator[None]:
        assert self._explain is not None
        try:
            yield
        except CairnError:
            raise
        except Exception as e:
            explained = self._explain(self, e, doing)
            if explained is None:
                raise
            raise explained from e

    @contextmanager
    def _not_found_as_error(self, oid: str) -> Iterator[None]:
        """One object's failures as its own errors: not here, or archived (readable only
        after a restore); anything else is the store's."""
        try:
            yield
        except FileNotFoundError as e:
            if missing_bucket(e):
                raise  # the whole store is missing, not one object
            raise self._not_found(oid) from None
        except Exception as e:  # a backend's own type (s3fs: PermissionError)
            if isinstance(e, CairnError) or not needs_restore(e):
                raise
            raise ObjectArchived(f"{self.label}: object {oid} is archived and must be "
                                 "restored before it can be read", oid, self.name) from None

    def _not_found(self, oid: str) -> ObjectNotFound:
        if not self.name:
            return ObjectNotFound(oid)
        return ObjectNotFound(oid, f"{self.label}; push it there from a clone whose cache "
                                   "has it")

    def missing(self, oid: str, dst: ObjectDB) -> NotFoundError:
        """Why `oid` cannot be copied from here to `dst`: it is not here."""
        if self.name:
            return self._not_found(oid)
        return NotFoundError(f"object {oid} is in neither the cache nor {dst.label}; "
                             "pull it from another remote or re-add its file")

    def corrupt(self, oid: str, digest: str) -> IntegrityError:
        """The object here named `oid` holds bytes that hash to `digest`."""
        if not self.name:
            return IntegrityError(f"cache object {oid} is corrupt (its bytes hash to "
                                  f"{digest[:12]}…); it was not pushed — run `cairn fsck`, "
                                  "then re-add or pull it", oid)
        return IntegrityError(
            f"{self.label}: object {oid} is corrupt (its bytes hash to {digest[:12]}…); "
            f"nothing was installed — to replace it, run `cairn fsck -r {self.name}` then "
            f"`cairn push -r {self.name}` in a clone whose cache has a good copy", oid)


def oid_from_path(path: str) -> str | None:
    """The oid named by ``…/objects/ab/cdef…``, or None for anything else there."""
    parts = path.rstrip("/").rsplit("/", 2)
    if len(parts) < 3 or len(parts[1]) != 2:
        return None
    oid = parts[1] + parts[2]
    return oid if is_digest(oid) else None


def copy_hashing(src: Any, out: Any, hasher: Any = None) -> tuple[str, int]:
    """Copy `src` to `out` (None: only hash) in chunks; return (digest, bytes copied)."""
    hasher = hasher if hasher is not None else blake3.blake3()
    copied = 0
    while chunk := src.read(CHUNK):
        hasher.update(chunk)
        if out is not None:
            out.write(chunk)
        copied += len(chunk)
    return str(hasher.hexdigest()), copied


def _fsync_if_local(f: Any) -> None:
    """Make a local temp file durable before its rename; other backends decide themselves."""
    try:
        fd = f.fileno()
    except (AttributeError, OSError, ValueError):
        return
    f.flush()
    os.fsync(fd)


def _protocol(fs: Any) -> str:
    protocol = fs.protocol  # fsspec: a name or a tuple of aliases, the usual one first
    return str(protocol if isinstance(protocol, str) else protocol[0])


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
