"""MLflow's proxied artifact routes (/api/2.0/mlflow-artifacts/artifacts/<path>), over
Cairn's content-addressed artifact store.

    <experiment>/<run>/artifacts/<path>   a run's artifact tree: PUT stores a file, GET
                                          reads one, ?path= lists a directory
    objects/<manifest digest>/<path>      a model version's immutable tree, read-only
                                          (what get-download-uri hands out)

A PUT body is streamed to a temporary file while it is hashed (BLAKE3), then stored as
the object of that digest and recorded at its path in the run's tree; the manifests of
the directories above it are rewritten, so `runs:/<run>/model` names one directory
digest as it does for runs logged by Cairn itself (a multipart upload, multipart.py,
ends the same way). Every path passes `checked_path` first: no '..', nothing absolute,
no backslash, nothing still percent-encoded. Listing a file answers no entries, as
MLflow's server does: the 2.x client takes any entry to mean "a directory".
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from cairn import paths
from cairn.errors import NotFoundError, PathError, UserError
from cairn.objects.hashing import is_digest
from cairn.objects.tree import TreeEntry, encode_tree, read_tree
from cairn.server.mlflow_compat.common import ARTIFACTS_API, answering
from cairn.store.entities import Artifact, Run
from cairn.tracking.artifacts import children

if TYPE_CHECKING:
    from cairn.objects.odb import ObjectDB
    from cairn.server.state import ServerState

log = logging.getLogger("cairn.server")
router = APIRouter()

OBJECTS = "objects"  # the first component of a path naming a tree by digest
CHUNK = 1 << 20
MANIFEST_ROUNDS = 10  # rewrites of one upload's manifests while other uploads land
_ENCODED = re.compile(r"%[0-9A-Fa-f]{2}")
_TREE_LOCKS = [threading.Lock() for _ in range(64)]  # one run's tree is updated at a time


def checked_path(raw: str) -> str:
    """An artifact path from a URL, or a PathError (400): decoded once by the server, it
    must still be relative, without '..', backslashes, NUL or percent-escapes (a double
    encoding of '..' would otherwise survive to a later decoder)."""
    if raw in ("", "/"):
        return ""
    problem = None
    if "\\" in raw:
        problem = "contains a backslash"
    elif _ENCODED.search(raw):
        problem = "is still percent-encoded after decoding (double encoding)"
    elif raw.startswith("/"):
        problem = "is absolute"
    elif "//" in raw.rstrip("/"):
        problem = "has an empty component ('//'): an absolute path inside it"
    elif "#" in raw:  # as MLflow: a client's URL to it would end at the '#'
        problem = "contains '#'"
    elif any(p.partition(";")[0] in (".", "..") for p in raw.split("/") if ";" in p):
        problem = "has a '..;' component, which servers that strip ';' parameters read as '..'"
    if problem is None:
        problem = paths.problem(raw, root_ok=True)
    if problem is not None:
        raise PathError(f"artifact path {raw!r} {problem}; artifact paths are relative to "
                        "the run's artifact root, e.g. 0/<run id>/artifacts/model/MLmodel",
                        raw)
    normal = paths.normalise(raw)
    return "" if normal == "." else normal


@dataclass(frozen=True)
class RunPath:
    run: Run
    rel: str  # inside the run's artifact root, "" for the root


@dataclass(frozen=True)
class TreePath:
    digest: str  # a directory manifest
    rel: str


def locate(state: ServerState, raw: str) -> RunPath | TreePath:
    path = checked_path(raw)
    parts = path.split("/") if path else []
    if len(parts) >= 2 and parts[0] == OBJECTS:
        if not is_digest(parts[1]):
            raise UserError(f"artifact path {raw!r}: {parts[1]!r} is not a digest")
        return TreePath(parts[1], "/".join(parts[2:]))
    if len(parts) < 3 or parts[2] != "artifacts":
        raise NotFoundError(f"artifact path {raw!r} names no run's artifacts; the form is "
                            "<experiment id>/<run id>/artifacts/<path>")
    run = state.store.get_run(parts[1])
    if run.info.experiment_id != parts[0]:
        raise NotFoundError(f"run {parts[1]} is not in experiment {parts[0]} (its artifact "
                            f"root is {run.info.experiment_id}/{parts[1]}/artifacts)")
    return RunPath(run, "/".join(parts[3:]))


# -- reading -------------------------------------------------------------------------------

def _tree_entry(odb: ObjectDB, digest: str, rel: str) -> TreeEntry:
    """The entry at `rel` inside the manifest `digest` (a directory entry for "")."""
    entry = TreeEntry("", "dir", digest, 0)
    for name in [p for p in rel.split("/") if p]:
        if not entry.is_dir:
            raise NotFoundError(f"no artifact {rel!r} in tree {digest}")
        found = [e for e in read_tree(odb, entry.digest) if e.name == name]
        if not found:
            raise NotFoundError(f"no artifact {rel!r} in tree {digest}")
        entry = found[0]
    return entry


def listing(state: ServerState, raw: str) -> list[dict[str, Any]]:
    """The entries directly under a path, named relative to it, and none for a file (as
    MLflow's server does: the 2.x client reads any entry as "this path is a directory")."""
    where = locate(state, raw)
    if isinstance(where, TreePath):
        entry = _tree_entry(state.artifacts, where.digest, where.rel)
        if not entry.is_dir:
            return []
        return [{"path": e.name, "is_dir": e.is_dir, **({} if e.is_dir else
                                                        {"file_size": e.size})}
                for e in read_tree(state.artifacts, entry.digest)]
    entries = state.store.list_artifacts(where.run.info.run_id, where.rel or None)
    if any(e.path == where.rel and not e.is_dir for e in entries):
        return []
    start = len(where.rel) + 1 if where.rel else 0
    return [{"path": e.path[start:], "is_dir": e.is_dir, **({} if e.is_dir else
                                                            {"file_size": e.size})}
            for e in children(entries, where.rel)]


def file_digest(state: ServerState, raw: str) -> tuple[str, int]:
    where = locate(state, raw)
    if isinstance(where, TreePath):
        entry = _tree_entry(state.artifacts, where.digest, where.rel)
        if entry.is_dir:
            raise UserError(f"artifact {raw!r} is a directory; list it with ?path=")
        return entry.digest, entry.size
    if not where.rel:
        raise UserError(f"artifact path {raw!r} is a run's artifact root; name a file in it")
    entries = state.store.list_artifacts(where.run.info.run_id, where.rel)
    for e in entries:
        if e.path == where.rel:
            if e.is_dir:
                raise UserError(f"artifact {raw!r} is a directory; list it with ?path=")
            return e.digest, e.size
    raise NotFoundError(f"run {where.run.info.run_id} has no artifact {where.rel!r}")


def stream_object(odb: ObjectDB, digest: str) -> Iterator[bytes]:
    """The object's bytes, hashed on the way: a corrupt object ends the response short
    (the client sees a failed download, never wrong bytes reported as complete)."""
    import blake3

    hasher = blake3.blake3()
    with odb.open(digest) as f:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
            yield chunk
    if hasher.hexdigest() != digest:
        log.error("object %s in %s is corrupt; download cut short", digest, odb.root)
        raise RuntimeError(f"object {digest} is corrupt")


# -- writing -------------------------------------------------------------------------------

def tree_lock(run_id: str) -> threading.Lock:
    return _TREE_LOCKS[int(hashlib.sha1(run_id.encode()).hexdigest()[:8], 16) % 64]


def store_received(state: ServerState, tmp: Path, digest: str) -> None:
    """Move a received temp file (its digest known) into the artifact store."""
    odb = state.artifacts
    if odb.is_local:
        odb.install(tmp, digest)
        return
    try:
        with open(tmp, "rb") as src, odb.receive(digest) as out:
            shutil.copyfileobj(src, out, CHUNK)
    finally:
        tmp.unlink(missing_ok=True)


def keep(state: ServerState, tmp: Path, run_id: str, rel: str, digest: str,
         size: int) -> None:
    """Store a received file (its digest known) and record it at `rel` in the run's tree."""
    try:
        store_received(state, tmp, digest)
    finally:
        tmp.unlink(missing_ok=True)
    record(state, run_id, rel, digest, size)


def record(state: ServerState, run_id: str, rel: str, digest: str, size: int) -> None:
    """Record a file in the run's tree and rewrite the manifests of its top directory."""
    with tree_lock(run_id):
        store = state.store
        store.log_artifacts(run_id, [Artifact(run_id, rel, digest, size, False)])
        top = rel.split("/", 1)[0]
        if top == rel:
            return
        files = _files_below(state, run_id, top)
        # Another worker process may record a file under `top` meanwhile and write its
        # manifests before ours: whoever writes last reads the files again afterwards and
        # rewrites until what it wrote covers every file recorded.
        for _ in range(MANIFEST_ROUNDS):
            records: list[Artifact] = []
            _manifest(state.artifacts, run_id, top, files, records)
            store.log_artifacts(run_id, records)
            now = _files_below(state, run_id, top)
            if now == files:
                return
            files = now
        log.warning("run %s: files under %s kept changing; its manifest may lag", run_id, top)


def remove(state: ServerState, run_id: str, rel: str) -> None:
    """Delete a file or directory from the run's tree: its records go, and the manifests
    of its top directory are rewritten from the files left, in one store transaction.
    The objects stay until `cairn gc` finds nothing naming them (a version may)."""
    with tree_lock(run_id):
        top = rel.split("/", 1)[0]
        if top == rel:
            state.store.replace_artifacts(run_id, rel, [])
            return
        prefix = rel + "/"
        before = _files_below(state, run_id, top)
        left = [f for f in before if f.path != rel and not f.path.startswith(prefix)]
        if len(left) == len(before) and not any(e.path == rel for e in
                                                state.store.list_artifacts(run_id, rel)):
            raise NotFoundError(f"run {run_id} has no artifact {rel!r}")
        records: list[Artifact] = []
        if left:
            _manifest(state.artifacts, run_id, top, left, records)
        state.store.replace_artifacts(run_id, top, [*records, *left])


def _files_below(state: ServerState, run_id: str, top: str) -> list[Artifact]:
    return sorted((e for e in state.store.list_artifacts(run_id, top) if not e.is_dir),
                  key=lambda e: e.path)


def _manifest(odb: ObjectDB, run_id: str, directory: str, files: list[Artifact],
              records: list[Artifact]) -> TreeEntry:
    """The manifest of `directory` from the files below it (stored), its record and its
    subdirectories' appended to `records`."""
    prefix = directory + "/"
    entries: list[TreeEntry] = []
    subdirs: dict[str, list[Artifact]] = {}
    for f in files:
        rest = f.path[len(prefix):]
        name, slash, _ = rest.partition("/")
        if slash:
            subdirs.setdefault(name, []).append(f)
        else:
            entries.append(TreeEntry(name, "file", f.digest, f.size, "0644"))
    for name, below in sorted(subdirs.items()):
        entries.append(_manifest(odb, run_id, prefix + name, below, records))
    size = sum(e.size for e in entries)
    digest = odb.add_bytes(encode_tree(entries))
    records.append(Artifact(run_id, directory, digest, size, True))
    return TreeEntry(posixpath.basename(directory), "dir", digest, size, "0755")


def _flush(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())


def new_tmp(state: ServerState) -> Path:
    """A fresh temporary file name for a received body: beside the objects when they are
    local (so storing it is a rename), else in the system's temporary directory."""
    if state.artifacts.is_local:
        return state.artifacts.new_tmp_path()
    fd, name = tempfile.mkstemp(prefix="cairn-upload-")
    os.close(fd)
    return Path(name)


async def receive_into(request: Request, tmp: Path) -> tuple[str, int]:
    """The request body written to `tmp`, hashed (BLAKE3) as it arrives: never whole in
    memory. Its digest and size; nothing is left at `tmp` if the body does not arrive."""
    import blake3
    from starlette.concurrency import run_in_threadpool

    hasher = blake3.blake3()
    size = 0
    try:
        with open(tmp, "wb") as out:
            async for chunk in request.stream():
                hasher.update(chunk)
                out.write(chunk)  # into the page cache: quick; the flush is below
                size += len(chunk)
            await run_in_threadpool(_flush, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return str(hasher.hexdigest()), size


async def receive_body(state: ServerState, request: Request) -> tuple[Path, str, int]:
    """The request body in a temporary file, with its digest and size."""
    tmp = new_tmp(state)
    digest, size = await receive_into(request, tmp)
    return tmp, digest, size


# -- routes ----------------------------------------------------------------------------------

@router.put(ARTIFACTS_API + "/{path:path}", include_in_schema=False)
@answering
async def upload(path: str, request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    from cairn.server.app import state_of

    state = state_of(request)
    where = await run_in_threadpool(locate, state, path)
    if not isinstance(where, RunPath):
        raise UserError(f"artifact path {path!r} names a model version's tree, which is "
                        "immutable; upload into a run's artifacts")
    if not where.rel:
        raise UserError(f"artifact path {path!r} is a run's artifact root; name a file")
    # Records nothing; with --auth it refuses a user without EDIT before a byte is read.
    await run_in_threadpool(state.store.log_artifacts, where.run.info.run_id, [])
    tmp, digest, size = await receive_body(state, request)
    await run_in_threadpool(keep, state, tmp, where.run.info.run_id, where.rel, digest, size)
    return JSONResponse({})


@router.get(ARTIFACTS_API + "/{path:path}", include_in_schema=False)
@answering
async def download(path: str, request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    from cairn.server.app import state_of

    state = state_of(request)
    digest, size = await run_in_threadpool(file_digest, state, path)
    if not state.artifacts.exists(digest):
        raise NotFoundError(f"artifact {path!r} is recorded (object {digest}) but its bytes "
                            "are not in this server's artifact store")
    return StreamingResponse(stream_object(state.artifacts, digest),
                             media_type="application/octet-stream",
                             headers={"Content-Length": str(size)})


@router.get(ARTIFACTS_API, include_in_schema=False)
@answering
async def list_route(request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    from cairn.server.app import state_of

    files = await run_in_threadpool(listing, state_of(request),
                                    request.query_params.get("path", ""))
    return JSONResponse({"files": files} if files else {})


@router.delete(ARTIFACTS_API + "/{path:path}", include_in_schema=False)
@answering
async def delete(path: str, request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    from cairn.server.app import state_of

    state = state_of(request)
    where = await run_in_threadpool(locate, state, path)
    if not isinstance(where, RunPath):
        raise UserError(f"artifact path {path!r} names a model version's tree, which is "
                        "immutable")
    if not where.rel:
        raise UserError(f"artifact path {path!r} is a run's whole artifact root; name a file "
                        "or directory in it (or delete the run)")
    await run_in_threadpool(remove, state, where.run.info.run_id, where.rel)
    return JSONResponse({})

