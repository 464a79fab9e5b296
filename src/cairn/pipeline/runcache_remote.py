"""`cairn push/fetch/pull --run-cache`: run-cache entries and the objects they name.

On a remote, entries live at ``<remote>/runs/<key[:2]>/<key[2:]>``, beside
``objects/``, with the same bytes as in the cache. Order keeps a remote and a cache
consistent: a push sends an entry's objects before the entry, a fetch installs the
objects before the entry, so an entry never names objects that are not there (unless
someone deleted them since, which restore checks anyway). Entries are verified on
arrival like objects: one that does not hash to its name is ignored.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from cairn.errors import RemoteError
from cairn.objects import transfer
from cairn.objects.odb import ObjectDB
from cairn.objects.transfer import TransferResult
from cairn.pipeline import runcache
from cairn.pipeline.runcache import RunEntry
from cairn.project.context import ProjectContext
from cairn.project.tracked import TrackedPath
from cairn.remotes.connect import open_remote
from cairn.workspace.sync import fetch_outs, objects_of, transfer_jobs

Progress = Callable[[int], None]


@dataclass
class RunCacheTransfer:
    entries: list[str] = field(default_factory=list)  # keys sent or received
    objects: TransferResult = field(default_factory=TransferResult)
    invalid: list[str] = field(default_factory=list)  # remote entries that failed checks


def push(project: ProjectContext, remote: str | None = None, jobs: int | None = None,
         progress: Progress | None = None) -> RunCacheTransfer:
    """Send the entries the remote lacks, after every object any local entry names."""
    store = open_remote(project.config, remote)
    store.check_writable()
    cache_root = project.odb.root
    local = {k: e for k in runcache.keys(cache_root)
             if (e := runcache.lookup(cache_root, k)) is not None}
    result = RunCacheTransfer()
    oids = list(objects_of(project.odb, _outs(local.values())))
    result.objects = transfer.transfer(project.odb, store, oids,
                                       transfer_jobs(project, store, jobs), progress)
    sent = set(result.objects.failed)
    on_remote = set(_remote_keys(store))
    for key, entry in sorted(local.items()):
        if key in on_remote or any(o.digest in sent for o in entry.outs):
            continue
        _upload(store, key, entry.to_bytes())
        result.entries.append(key)
    return result


def fetch(project: ProjectContext, remote: str | None = None, jobs: int | None = None,
          progress: Progress | None = None) -> RunCacheTransfer:
    """Receive the entries the cache lacks, with the objects they name."""
    store = open_remote(project.config, remote)
    cache_root = project.odb.root
    have = set(runcache.keys(cache_root))
    result = RunCacheTransfer()
    arriving: dict[str, RunEntry] = {}
    for key in _remote_keys(store):
        if key in have:
            continue
        entry = runcache.decode(_download(store, key), key)
        if entry is None:
            result.invalid.append(key)
        else:
            arriving[key] = entry
    with project.lock():
        result.objects = fetch_outs(project.odb, store, _outs(arriving.values()),
                                    transfer_jobs(project, store, jobs), progress)
        failed = set(result.objects.failed)
        for key, entry in sorted(arriving.items()):
            if not any(o.digest in failed for o in entry.outs):
                runcache.save(cache_root, entry)
                result.entries.append(key)
    return result


def fetch_entry(project: ProjectContext, store: ObjectDB, key: str, jobs: int | None = None
                ) -> RunEntry | None:
    """The remote's entry for `key`, with its objects, installed in the cache; None if
    the remote has none (or a bad one, or some of its objects are missing there).
    The caller holds the repository lock (repro --pull)."""
    with store.talking(f"download run-cache entry {key}"):
        try:
            data = bytes(store.fs.cat_file(_remote_path(store, key)))
        except FileNotFoundError:
            return None
    entry = runcache.decode(data, key)
    if entry is None:
        return None
    fetched = fetch_outs(project.odb, store, _outs([entry]), transfer_jobs(project, store, jobs))
    if fetched.failed:
        return None
    runcache.save(project.odb.root, entry)
    return entry


def _outs(entries: Any) -> list[TrackedPath]:
    outs = {(o.digest, o.nfiles is not None): TrackedPath(o.path, o.digest, o.size, o.nfiles)
            for entry in entries for o in entry.outs}
    return list(outs.values())


def _runs_dir(store: ObjectDB) -> str:
    return f"{store.path}/{runcache.RUNS_DIR}"


def _remote_path(store: ObjectDB, key: str) -> str:
    return f"{_runs_dir(store)}/{key[:2]}/{key[2:]}"


def _remote_keys(store: ObjectDB) -> Iterator[str]:
    from cairn.objects.hashing import is_digest

    if store.read_only:
        raise RemoteError(f"remote {store.name!r} ({store.url}) is served over HTTP, which "
                          "cannot list run-cache entries; use another remote (`-r NAME`)",
                          store.name)
    with store.talking("list run-cache entries"):
        try:
            paths = store.fs.find(_runs_dir(store))
        except FileNotFoundError:
            return  # nothing pushed yet
    for path in paths:
        parts = path.rstrip("/").rsplit("/", 2)
        key = parts[-2] + parts[-1] if len(parts) == 3 and len(parts[-2]) == 2 else ""
        if is_digest(key):
            yield key


def _download(store: ObjectDB, key: str) -> bytes:
    with store.talking(f"download run-cache entry {key}"):
        return bytes(store.fs.cat_file(_remote_path(store, key)))


def _upload(store: ObjectDB, key: str, data: bytes) -> None:
    path = _remote_path(store, key)
    with store.talking(f"upload run-cache entry {key}"):
        store.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        if not store.renames:  # object stores show an object only once it is whole
            store.fs.pipe_file(path, data)
            return
        tmp = f"{path}.{uuid.uuid4().hex[:12]}.tmp"
        store.fs.pipe_file(tmp, data)
        store.fs.mv(tmp, path)

