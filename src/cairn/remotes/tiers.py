"""Cold remotes, and the one way objects come from remotes into a local store.

A remote marked ``tier = "cold"`` holds the objects that only Archived model versions
need (`cairn tier apply` moves them there and back: cairn.lifecycle.tiering). It is an
ordinary remote, written with the storage class its config names (S3:
``storage_class = "GLACIER"`` or ``"DEEP_ARCHIVE"``; GCS: the bucket's default class).

`fetch_trees` is how fetch, pull and `load_model` read objects: from the remote asked,
and what it lacks from the cold remotes. An archived object (S3 GLACIER, DEEP_ARCHIVE:
readable only once restored) has its restore requested, and its failure becomes one line
saying what, where, and when to retry; the rest of the transfer goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from cairn.config import Config
from cairn.errors import FormatError, IntegrityError, ObjectArchived, ObjectNotFound
from cairn.objects.backend_errors import error_names
from cairn.objects.odb import ObjectDB
from cairn.objects.transfer import DEFAULT_JOBS, Progress, TransferResult, transfer_trees
from cairn.objects.tree import read_tree
from cairn.remotes.connect import (
    DEFAULT_RESTORE_DAYS,
    RemoteConfig,
    check_tier,
    configured_remote,
)

COLD = "cold"
RESTORE_TIER = "Standard"  # S3's retrieval tier: Expedited is dearer, Bulk slower
# How long a Standard restore takes (AWS: GLACIER 3-5 hours, DEEP_ARCHIVE within 12).
RESTORE_WAIT = {"GLACIER": "3-5 hours", "DEEP_ARCHIVE": "12 hours"}


@dataclass(frozen=True)
class ColdRemote:
    """A cold remote, opened."""

    store: ObjectDB
    restore_days: int


def cold_remotes(config: Config, besides: Iterable[str] = ()) -> list[RemoteConfig]:
    """Every remote marked `tier = "cold"` (checking every remote's tier), by name."""
    skip = set(besides)
    found = []
    for name, options in sorted(config.remotes().items()):
        if check_tier(name, options.get("tier", "hot")) == COLD and name not in skip:
            found.append(configured_remote(config, name))
    return found


def open_cold(config: Config, besides: Iterable[str] = ()) -> list[ColdRemote]:
    return [ColdRemote(c.connect(), c.restore_days) for c in cold_remotes(config, besides)]


def fetch_trees(src: ObjectDB, dst: ObjectDB, roots: Sequence[tuple[str, bool]], *,
                cold: Sequence[ColdRemote] = (), restore_days: int | None = None,
                jobs: int = DEFAULT_JOBS, progress: Progress | None = None,
                on_total: Callable[[int], None] | None = None,
                on_level: Callable[[TransferResult], None] | None = None,
                labels: Mapping[str, str] | None = None) -> TransferResult:
    """Copy `roots` (digest, is_directory) and everything below them from `src` into
    `dst`, level by level (`objects.transfer.transfer_trees`), taking what `src` lacks
    from the `cold` remotes. Each archived object has its restore requested (kept
    `restore_days` once done, for `src`'s own) and fails with the message saying so.
    `labels` name roots (digest → a path or URI) in those messages."""
    days = {c.store.name: c.restore_days for c in cold}
    if restore_days is not None:
        days.setdefault(src.name, restore_days)
    stores = {c.store.name: c.store for c in cold} | {src.name: src}

    def level(moved: TransferResult) -> None:
        archived = [e for e in moved.failed.values()
                    if isinstance(e, ObjectArchived) and not e.restore_requested]
        if archived:
            paths = _paths(dst, roots, labels or {}, {e.oid for e in archived})
            for error in archived:
                store = stores.get(error.remote or "", src)
                keep = days.get(store.name, DEFAULT_RESTORE_DAYS)
                moved.failed[error.oid] = request_restore(store, error.oid, keep,
                                                          paths.get(error.oid))
        if on_level is not None:
            on_level(moved)

    return transfer_trees(src, dst, roots, jobs, progress, on_total, level,
                          fallbacks=[c.store for c in cold])


def request_restore(store: ObjectDB, oid: str, days: int, path: str | None = None
                    ) -> ObjectArchived:
    """Ask `store` to restore archived object `oid` for `days`; the error to report."""
    what = f"{path} (object {oid})" if path else f"object {oid}"
    if store.scheme != "s3":
        return ObjectArchived(f"{what} on remote {store.name!r} is archived and must be "
                              "restored (rehydrated) with the storage provider's tools before "
                              "Cairn can read it; retry once that is done", oid, store.name)
    storage_class, under_way = _restore_s3(store, oid, days)
    asked = ("a restore was already under way" if under_way else
             f"a restore was requested ({RESTORE_TIER} retrieval, kept {days} days)")
    return ObjectArchived(f"{what} is in storage class {storage_class or 'unknown'} on remote "
                          f"{store.name!r}, which must be restored before it can be read; "
                          f"{asked} — retry in {restore_wait(storage_class)}",
                          oid, store.name, storage_class, True)


def restore_wait(storage_class: str | None) -> str:
    """How long a Standard restore of `storage_class` takes, for messages."""
    return RESTORE_WAIT.get(storage_class or "", "a few hours")


def _restore_s3(store: ObjectDB, oid: str, days: int) -> tuple[str | None, bool]:
    """(the object's storage class, whether a restore was already under way)."""
    path = store.oid_to_path(oid)
    with store.talking(f"request a restore of object {oid}"):
        storage_class = store.fs.info(path).get("StorageClass")
        bucket, key, _ = store.fs.split_path(path)
        request = {"Days": days, "GlacierJobParameters": {"Tier": RESTORE_TIER}}
        try:
            store.fs.call_s3("restore_object", Bucket=bucket, Key=key, RestoreRequest=request)
        except Exception as e:
            if "RestoreAlreadyInProgress" not in error_names(e):
                raise
            return storage_class, True
    return storage_class, False


def _paths(odb: ObjectDB, roots: Sequence[tuple[str, bool]], labels: Mapping[str, str],
           wanted: set[str]) -> dict[str, str]:
    """Where `wanted` lie below `roots`, as far as the manifests in `odb` tell."""
    found: dict[str, str] = {}
    stack = [(oid, is_dir, labels.get(oid, "")) for oid, is_dir in roots]
    seen: set[str] = set()
    while stack and len(found) < len(wanted):
        oid, is_dir, path = stack.pop()
        if oid in wanted and path:
            found.setdefault(oid, path)
        if not is_dir or oid in seen:
            continue
        seen.add(oid)
        try:
            entries = read_tree(odb, oid)
        except (ObjectNotFound, IntegrityError, FormatError):
            continue
        stack.extend((e.digest, e.is_dir, f"{path}/{e.name}" if path else e.name)
                     for e in entries)
    return found
