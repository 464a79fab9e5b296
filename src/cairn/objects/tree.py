"""Directory manifests: one object per directory level, like git trees.

A manifest is canonical JSON (docs/formats.md) listing its entries sorted by name:
``{"entries":[{"digest":…,"kind":"file"|"dir","mode":"0644","name":…,"size":…}],
"format":1}``. A directory's digest is the digest of its manifest's bytes, so a change
to one file rewrites only the manifests on its path.
"""

from __future__ import annotations

import json
import os
import stat
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from cairn.errors import FormatError, PathError
from cairn.objects.hashing import hash_bytes, hash_file, is_digest
from cairn.objects.odb import ObjectDB
from cairn.objects.state import StatCache

TREE_FORMAT = 1
TMP_SUFFIX = ".cairn-tmp"

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
    doc = {"entries": items, "format": TREE_FORMAT}
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decode_tree(data: bytes, oid: str = "") -> list[TreeEntry]:
    where = f"tree manifest {oid}" if oid else "tree manifest"
    try:
        doc = json.loads(data)
        if doc.get("format") != TREE_FORMAT:
            raise FormatError(f"unknown manifest format {doc.get('format')!r}", where)
        entries = [TreeEntry(e["name"], e["kind"], e["digest"], int(e["size"]), e["mode"])
                   for e in doc["entries"]]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise FormatError(f"malformed manifest ({e})", where) from None
    for entry in entries:
        if entry.kind not in ("file", "dir") or not is_digest(entry.digest) \
                or _unsafe_name(entry.name):
            raise FormatError(f"bad entry {entry.name!r}", where)
    return entries


def _unsafe_name(name: str) -> bool:
    # Names come from a remote too: never let one climb out of the directory.
    return not name or name in (".", "..") or "/" in name or "\0" in name


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


def _list_files(root: Path) -> tuple[list[ScannedFile], list[str]]:
    files: list[ScannedFile] = []
    dirs: list[str] = [""]
    stack = [("", str(root))]
    while stack:
        rel_dir, abs_dir = stack.pop()
        with os.scandir(abs_dir) as it:
            for entry in it:
                if entry.name.endswith(TMP_SUFFIX):
                    continue
                rel = f"{rel_dir}{entry.name}"
                if entry.is_dir(follow_symlinks=False):
                    dirs.append(rel)
                    stack.append((rel + "/", entry.path))
                    continue
                try:
                    st = entry.stat()  # follows a symlink to a file
                except FileNotFoundError:
                    raise PathError(f"{entry.path}: broken symlink; remove it or fix its target",
                                    entry.path) from None
                if stat.S_ISDIR(st.st_mode):
                    raise PathError(f"{entry.path}: symlink to a directory; Cairn does not "
                                    "follow those, copy the directory in instead", entry.path)
                if stat.S_ISREG(st.st_mode):
                    files.append(ScannedFile(rel, entry.path, st))
    return files, dirs


def scan_dir(root: Path, state: StatCache, odb: ObjectDB | None = None, jobs: int = 8,
             progress: Progress | None = None) -> DirScan:
    """Hash directory `root` into manifests; with `odb`, store files and manifests too.

    Files whose stat matches the stat cache are not read. Objects are stored before the
    manifests that name them.
    """
    files, dirs = _list_files(root)
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

    if len(todo) < 16 or jobs <= 1:
        for f in todo:
            one(f)
        return
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for _ in pool.map(one, todo):
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
