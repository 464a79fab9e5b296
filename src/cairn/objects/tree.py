"""Directory manifests: one object per directory level, like git trees.

A manifest is canonical JSON (docs/formats.md) listing its entries sorted by name:
``{"entries":[{"digest":…,"kind":"file"|"dir","mode":"0644","name":…,"size":…}],
"format":1}``. A directory's digest is the digest of its manifest's bytes, so a change
to one file rewrites only the manifests on its path.
"""

from __future__ import annotations

import os
import stat
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cairn import paths
from cairn.errors import FormatError, PathError
from cairn.objects.hashing import hash_bytes, hash_file, is_digest
from cairn.objects.odb import ObjectDB
from cairn.objects.state import StatCache, TreeRecord, is_racy

TREE_FORMAT = 1
MANIFEST_START = b'{"entries":['  # how every manifest's bytes begin (sorted keys)
FILE_MODES = ("0644", "0755")
TMP_SUFFIX = ".cairn-tmp"
PARALLEL_SIZE = 1 << 20

Progress = Callable[[int], None]


@dataclass(frozen=True)
class TreeEntry:
    name: str
    kind: str  # "file" or "dir"
    digest: str
    size: int
    mode: str = "0644"

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"


def encode_tree(entries: list[TreeEntry]) -> bytes:
    items = [
        {"digest": e.digest, "kind": e.kind, "mode": e.mode, "name": e.name, "size": e.size}
        for e in sorted(entries, key=lambda e: e.name)
    ]
    import json  # here, not at the top: `cairn status` on an unchanged tree never needs it

    doc = {"entries": items, "format": TREE_FORMAT}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decode_tree(data: bytes, oid: str = "") -> list[TreeEntry]:
    import json

    where = f"tree manifest {oid}" if oid else "tree manifest"
    try:
        doc = json.loads(data)
        if doc.get("format") != TREE_FORMAT:
            raise FormatError(f"unknown manifest format {doc.get('format')!r}", where)
        entries = [TreeEntry(e["name"], e["kind"], e["digest"], int(e["size"]), e["mode"])
                   for e in doc["entries"]]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise FormatError(f"malformed manifest ({e})", where) from None
    names: set[str] = set()
    for entry in entries:
        # Names come from a repository or a remote: never out of the directory, never
        # into .git or .cairn; modes are the two a file is checked out with, never setuid.
        problem = paths.name_problem(entry.name)
        if problem is None and entry.name in names:
            problem = "is listed twice"
        if problem is not None:
            raise FormatError(f"entry {entry.name!r} {problem}; restore it from git or a "
                              "remote", where)
        if entry.kind not in ("file", "dir") or not is_digest(entry.digest) \
                or entry.mode not in FILE_MODES or entry.size < 0:
            raise FormatError(f"bad entry {entry.name!r}", where)
        names.add(entry.name)
    return entries


def read_tree(odb: ObjectDB, oid: str) -> list[TreeEntry]:
    return decode_tree(odb.read_bytes(oid), oid)


def walk_tree(odb: ObjectDB, oid: str, prefix: str = "") -> Iterator[tuple[str, TreeEntry]]:
    """Every entry below tree `oid`, as (relative posix path, entry), depth first."""
    for entry in read_tree(odb, oid):
        rel = f"{prefix}{entry.name}"
        yield rel, entry
        if entry.is_dir:
            yield from walk_tree(odb, entry.digest, rel + "/")


def tree_oids(odb: ObjectDB, oid: str) -> Iterator[str]:
    """The tree's own manifest and every object below it."""
    yield oid
    for _, entry in walk_tree(odb, oid):
        yield entry.digest


def file_mode(st: os.stat_result) -> str:
    return "0755" if st.st_mode & stat.S_IXUSR else "0644"


@dataclass
class ScannedFile:
    rel: str
    path: str
    st: os.stat_result
    digest: str | None = None


@dataclass
class DirScan:
    """A workspace directory hashed into manifests."""

    oid: str
    size: int
    nfiles: int
    files: dict[str, tuple[str, int, str]] = field(default_factory=dict)  # rel → digest, size, mode
    manifests: dict[str, bytes] = field(default_factory=dict)


def _list_files(root: Path, skip_broken_links: bool = False, inside: paths.Root | None = None
                ) -> tuple[list[ScannedFile], list[str]]:
    """Files and directories below `root`; a symlink is followed only to a file, and
    with `inside`, only to one in that workspace (or the cache)."""
    files: list[ScannedFile] = []
    dirs: list[str] = [""]
    stack = [("", str(root))]
    while stack:
        rel_dir, abs_dir = stack.pop()
        with os.scandir(abs_dir) as it:
            for entry in it:
                if entry.name.endswith(TMP_SUFFIX) or paths.is_reserved(entry.name):
                    continue  # .git and .cairn are never data (DVC skips them too)
                if (problem := paths.encoding_problem(entry.name)) is not None:
                    raise PathError(f"{abs_dir}: the name "
                                    f"{problem}", abs_dir)
                rel = f"{rel_dir}{entry.name}"
                if entry.is_dir(follow_symlinks=False):
                    dirs.append(rel)
                    stack.append((rel + "/", entry.path))
                    continue
                if inside is not None and entry.is_symlink():
                    inside.check_symlink(entry.path)
                try:
                    st = entry.stat()  # follows a symlink to a file
                except FileNotFoundError:
                    if skip_broken_links:  # no content: as if absent (status, checkout)
                        continue
                    raise PathError(f"{entry.path}: broken symlink; remove it or fix its target",
                                    entry.path) from None
                if stat.S_ISDIR(st.st_mode):
                    raise PathError(f"{entry.path}: symlink to a directory; Cairn does not "
                                    "follow those, copy the directory in instead", entry.path)
                if stat.S_ISREG(st.st_mode):
                    files.append(ScannedFile(rel, entry.path, st))
    return files, dirs


def fingerprint(files: list[ScannedFile], dirs: list[str]) -> tuple[str, int]:
    """A digest of every name and stat in a directory tree, and its newest mtime.

    Equal fingerprints mean nothing was added, removed, renamed or rewritten (racy
    timestamps aside, which the caller checks with the newest mtime)."""
    # Listing order, not sorted: a directory listed in another order merely misses.
    lines = [f"{f.rel}\0{f.st.st_ino}\0{f.st.st_size}\0{f.st.st_mtime_ns}\0"
             f"{f.st.st_mode & 0o100}" for f in files]
    lines.extend(dirs)
    newest = max((f.st.st_mtime_ns for f in files), default=0)
    return hash_bytes("\n".join(lines).encode()), newest


def scan_dir(root: Path, state: StatCache, odb: ObjectDB | None = None, jobs: int = 8,
             progress: Progress | None = None, want_files: bool = True,
             inside: paths.Root | None = None) -> DirScan:
    """Hash directory `root` into manifests; with `odb`, store files and manifests too.

    Files whose stat matches the stat cache are not read. When nothing in the tree has
    changed since the last scan and `want_files` is false, the recorded digest is
    returned without looking at single files (DirScan.files stays empty). Objects are
    stored before the manifests that name them.
    """
    started = time.time_ns()
    files, dirs = _list_files(root, skip_broken_links=odb is None, inside=inside)
    stats_print, newest = fingerprint(files, dirs)
    if not want_files and odb is None:
        known = state.get_tree(str(root))
        if known and known.fingerprint == stats_print and not is_racy(newest, known.recorded_ns):
            return DirScan(known.digest, known.size, known.nfiles)
    scan = _scan_files(root, files, dirs, state, odb, jobs, progress)
    state.put_tree(str(root), TreeRecord(stats_print, scan.oid, scan.size, scan.nfiles, started))
    return scan


def _scan_files(root: Path, files: list[ScannedFile], dirs: list[str], state: StatCache,
                odb: ObjectDB | None, jobs: int, progress: Progress | None) -> DirScan:
    state.load_prefix(str(root))
    todo = []
    for f in files:
        f.digest = state.get(f.path, f.st)
        if f.digest is None or (odb is not None and not odb.has(f.digest, f.st.st_size)):
            todo.append(f)
    if odb is None:
        _hash_files(todo, state, odb, jobs, progress)
        state.flush()
        return _build_manifests(files, dirs, odb)
    with odb.batch():
        _hash_files(todo, state, odb, jobs, progress)
        scan = _build_manifests(files, dirs, odb)
    state.flush()  # only once the objects are durable
    return scan


def _hash_files(todo: list[ScannedFile], state: StatCache, odb: ObjectDB | None, jobs: int,
                progress: Progress | None) -> None:
    def one(f: ScannedFile) -> None:
        started = time.time_ns()
        if odb is not None:
            f.digest, _ = odb.add_file(f.path, f.digest, f.st)
        else:
            f.digest = hash_file(f.path, f.st.st_size)
        state.put(f.path, f.st, f.digest, started)
        if progress:
            progress(1)

    # Small files cost system calls, not hashing: threads only contend for the kernel
    # and the GIL there (measured). Large files hash and copy in parallel.
    large = [f for f in todo if f.st.st_size >= PARALLEL_SIZE]
    for f in todo:
        if f.st.st_size < PARALLEL_SIZE:
            one(f)
    if len(large) < 2 or jobs <= 1:
        for f in large:
            one(f)
        return
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for _ in pool.map(one, large):
            pass


def _build_manifests(files: list[ScannedFile], dirs: list[str], odb: ObjectDB | None) -> DirScan:
    children: dict[str, list[TreeEntry]] = defaultdict(list)
    scan = DirScan(oid="", size=0, nfiles=len(files))
    for f in files:
        assert f.digest is not None
        parent, _, name = f.rel.rpartition("/")
        mode = file_mode(f.st)
        children[parent].append(TreeEntry(name, "file", f.digest, f.st.st_size, mode))
        scan.files[f.rel] = (f.digest, f.st.st_size, mode)
    # Deepest directories first, so each child's digest is known before its parent's.
    for rel in sorted(dirs, key=lambda d: d.count("/") + (d != ""), reverse=True):
        entries = children[rel]
        size = sum(e.size for e in entries)
        data = encode_tree(entries)
        oid = hash_bytes(data)
        scan.manifests[oid] = data
        if odb is not None:
            odb.add_bytes(data)
        if rel == "":
            scan.oid, scan.size = oid, size
        else:
            parent, _, name = rel.rpartition("/")
            children[parent].append(TreeEntry(name, "dir", oid, size, "0755"))
    return scan
