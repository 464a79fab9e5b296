"""What killed pushes leave on a remote: temp files and unfinished uploads.

Writers put bytes under a temporary name first (docs/formats.md, "Object database")::

    <path>/tmp/<random>                             renaming remotes (ssh, memory; local,
                                                    for objects of 4 MiB or more)
    <path>/objects/<oid[:2]>/<oid[2:]>.<random>.tmp local remotes, beside the object
    <path>/runs/<key[:2]>/<key[2:]>.<random>.tmp    run-cache entries on renaming remotes
    an incomplete multipart upload under <path>/    S3

No lock spans the clones pushing to one remote, so `cairn gc --cloud` collects a
leftover only once nothing has written to it for a day (`cairn.lifecycle.gc.TEMP_AGE`):
a live writer keeps writing to its temp file (or its upload's parts), so its last
modification stays recent.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cairn.fsutil import list_dir
from cairn.objects.odb import ObjectDB

TEMP_SUFFIX = ".tmp"
# Directories whose `.tmp` names are writes in progress ("runs" is cairn.pipeline's).
BESIDE_DIRS = ("objects", "runs")


@dataclass(frozen=True)
class Leftover:
    name: str  # relative to the remote's path, for people
    path: str  # in the remote's filesystem
    size: int
    modified: float  # seconds since the epoch: the last write
    upload_id: str | None = None  # an unfinished S3 multipart upload

    def describe(self) -> str:
        return f"{self.name} (unfinished upload)" if self.upload_id else self.name


def find(remote: ObjectDB, older_than: float) -> list[Leftover]:
    """Leftovers on `remote` last written before `older_than` (seconds since the epoch):
    what killed pushes left, never a live push's."""
    if remote.read_only:
        return []
    with remote.talking("list temp files"):
        if remote.is_local:
            found = list(_local(remote.path))
        elif remote.renames:
            found = list(_by_listing(remote))
        elif remote.scheme == "s3":
            found = list(_multipart_uploads(remote, older_than))
        else:  # GCS and Azure expire unfinished uploads themselves (about a week)
            found = []
    return sorted((f for f in found if f.modified < older_than), key=lambda f: f.name)


def remove(remote: ObjectDB, leftovers: Iterable[Leftover]) -> None:
    """Delete temp files and abort uploads; ones already gone are fine."""
    remote.check_writable()
    with remote.talking("delete temp files"):
        for leftover in leftovers:
            with suppress(FileNotFoundError):
                if leftover.upload_id is not None:
                    bucket, key, _ = remote.fs.split_path(leftover.path)
                    remote.fs.abort_mpu(bucket, key, leftover.upload_id)
                elif remote.is_local:
                    os.unlink(leftover.path)
                else:
                    remote.fs.rm_file(leftover.path)


# -- filesystems -----------------------------------------------------------------------


def _local(base: str) -> Iterator[Leftover]:
    """Plain scandir and lstat: no fsspec, no stat of the objects themselves."""
    yield from _local_files(base, "tmp", lambda name: True)
    for top in BESIDE_DIRS:
        for prefix in list_dir(os.path.join(base, top)):
            if len(prefix.name) == 2 and prefix.is_dir(follow_symlinks=False):
                yield from _local_files(base, f"{top}/{prefix.name}",
                                        lambda name: name.endswith(TEMP_SUFFIX))


def _local_files(base: str, rel_dir: str, wanted: Callable[[str], bool]
                 ) -> Iterator[Leftover]:
    for entry in list_dir(os.path.join(base, rel_dir)):
        if not wanted(entry.name) or not entry.is_file(follow_symlinks=False):
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # renamed into place (or removed) since the listing
        yield Leftover(f"{rel_dir}/{entry.name}", entry.path, st.st_size, st.st_mtime)


def _by_listing(remote: ObjectDB) -> Iterator[Leftover]:
    base = remote.path
    for top in ("tmp", *BESIDE_DIRS):
        try:
            listing = remote.fs.find(f"{base}/{top}", detail=True)
        except FileNotFoundError:
            continue
        for path, info in listing.items():
            if info.get("type", "file") != "file":
                continue
            if top != "tmp" and not path.endswith(TEMP_SUFFIX):
                continue
            modified = _modified(remote.fs, path, info)
            if modified is not None:  # an unknown age is never old enough
                name = path.rstrip("/")[len(base):].lstrip("/")
                yield Leftover(name, path, int(info.get("size") or 0), modified)


def _modified(fs: Any, path: str, info: dict[str, Any]) -> float | None:
    for key in ("mtime", "LastModified", "last_modified"):
        if info.get(key) is not None:
            return _seconds(info[key])
    with suppress(NotImplementedError, FileNotFoundError, AttributeError):
        return _seconds(fs.modified(path))
    return _seconds(info["created"]) if info.get("created") is not None else None


def _seconds(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


# -- S3 multipart uploads --------------------------------------------------------------


def _multipart_uploads(remote: ObjectDB, older_than: float) -> Iterator[Leftover]:
    """Uploads under the remote's prefix; the last write is the latest of their start
    and their parts'."""
    fs = remote.fs
    bucket, prefix, _ = fs.split_path(remote.path)
    prefix = f"{prefix.rstrip('/')}/" if prefix else ""
    for upload in _pages(fs, "list_multipart_uploads", "Uploads", Bucket=bucket,
                         Prefix=prefix):
        key, upload_id = upload["Key"], upload["UploadId"]
        started = _seconds(upload["Initiated"])
        if started >= older_than:
            continue  # begun too recently: no need to look at its parts
        parts = list(_pages(fs, "list_parts", "Parts", Bucket=bucket, Key=key,
                            UploadId=upload_id))
        modified = max([started, *(_seconds(p["LastModified"]) for p in parts)])
        size = sum(int(p.get("Size") or 0) for p in parts)
        yield Leftover(key[len(prefix):], f"{bucket}/{key}", size, modified, upload_id)


# Which response fields carry the next page's markers, per listing call.
_MARKERS = {"list_multipart_uploads": {"KeyMarker": "NextKeyMarker",
                                       "UploadIdMarker": "NextUploadIdMarker"},
            "list_parts": {"PartNumberMarker": "NextPartNumberMarker"}}


def _pages(fs: Any, method: str, field: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    while True:
        page = fs.call_s3(method, **kwargs)
        yield from page.get(field) or []
        if not page.get("IsTruncated"):
            return
        kwargs.update({ask: page[given] for ask, given in _MARKERS[method].items()})
