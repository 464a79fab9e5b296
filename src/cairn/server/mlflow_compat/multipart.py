"""MLflow's proxied multipart upload (the client's MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD),
so a multi-GB artifact arrives in parts that can each be retried:

    POST mpu/create/<run artifact dir>    {"path": <the client's file>, "num_parts": N}
         → {"upload_id", "credentials": [{"url", "part_number", "headers"}, …]}
    PUT  mpu/upload/<upload id>/<k>       part k's bytes, streamed to disk; its BLAKE3 is
                                          answered as the ETag (the client uploads each
                                          part to the URL its credential names)
    POST mpu/complete/<run artifact dir>  {"path", "upload_id", "parts": [{"part_number",
                                          "etag"}, …]}: the parts, read in order, checked
                                          against their ETags and hashed into one object,
                                          stored and recorded as a PUT of the file is
    POST mpu/abort/<run artifact dir>     {"path", "upload_id"}: the parts are removed

The file lands at <run artifact dir>/<basename of "path">, as on MLflow's server; both
pass `checked_path`. An upload is a directory of part files beside the artifact store
(its id, 128 random bits, is the only way to name it: the part URLs carry no other
credential, like the presigned URLs MLflow hands out), so any server process on the
machine can take any part; one left idle for UPLOAD_TTL_S is removed by the next create.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from cairn.errors import NotFoundError, UserError
from cairn.server.mlflow_compat.artifacts import (
    CHUNK,
    RunPath,
    checked_path,
    keep,
    locate,
    new_tmp,
    receive_into,
)
from cairn.server.mlflow_compat.common import Params, answering, invalid, read_params

if TYPE_CHECKING:
    from cairn.server.state import ServerState

router = APIRouter()

MPU_API = "/api/2.0/mlflow-artifacts/mpu"
MAX_PARTS = 10_000  # S3's limit, which the client sizes its parts for
UPLOAD_TTL_S = 24 * 3600
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_META = "upload.json"


@dataclass(frozen=True)
class Upload:
    id: str
    dir: Path
    run_id: str
    rel: str  # the file's path inside the run's artifact root
    num_parts: int

    def part(self, number: int) -> Path:
        return self.dir / f"{number:05d}.part"


def uploads_root(state: ServerState) -> Path:
    """Where uploads in progress live: beside the objects when they are local (the
    assembled file is then stored by a rename), else in the temporary directory."""
    odb = state.artifacts
    if odb.is_local:
        return odb.root / "uploads"
    return Path(tempfile.gettempdir()) / "cairn-uploads"


def target(state: ServerState, raw: str, local_file: str) -> tuple[str, str]:
    """(run id, path in its artifacts) of the file an upload writes: the URL's run
    directory joined with the last component of the client's file name."""
    where = locate(state, raw)
    if not isinstance(where, RunPath):
        raise UserError(f"artifact path {raw!r} names a model version's tree, which is "
                        "immutable; upload into a run's artifacts")
    name = re.split(r"[/\\]", local_file)[-1]  # the client's own path: posix or Windows
    if not name:
        raise invalid(f"'path' {local_file!r} names no file; give the uploaded file's path")
    rel = checked_path(f"{where.rel}/{name}" if where.rel else name)
    return where.run.info.run_id, rel


def load(state: ServerState, upload_id: str) -> Upload:
    where = uploads_root(state) / upload_id
    try:
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise FileNotFoundError
        meta = json.loads((where / _META).read_text())
    except FileNotFoundError:
        raise NotFoundError(f"no multipart upload {upload_id!r} is in progress on this "
                            "server (it was completed, aborted, or never created)") from None
    return Upload(upload_id, where, meta["run_id"], meta["path"], int(meta["num_parts"]))


def matching(state: ServerState, path: str, params: Params) -> Upload:
    """The upload a complete or abort names, which must be for the file its URL names."""
    upload = load(state, params.text("upload_id"))
    run_id, rel = target(state, path, params.text("path"))
    if (run_id, rel) != (upload.run_id, upload.rel):
        raise invalid(f"multipart upload {upload.id} writes {upload.rel!r} of run "
                      f"{upload.run_id}, not {rel!r} of run {run_id}")
    return upload


def part_number(upload: Upload, raw: object) -> int:
    try:
        number = int(str(raw))
    except ValueError:
        number = 0
    if not 1 <= number <= upload.num_parts:
        raise invalid(f"part number {raw!r} is not one of upload {upload.id}'s parts "
                      f"1..{upload.num_parts}")
    return number


def _sweep(root: Path) -> None:
    """Remove uploads nobody touched for UPLOAD_TTL_S (a client that died mid-upload)."""
    cutoff = time.time() - UPLOAD_TTL_S
    for entry in os.scandir(root):
        try:
            if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                shutil.rmtree(entry.path, ignore_errors=True)
        except FileNotFoundError:
            pass


def create(state: ServerState, path: str, params: Params, base_url: str,
           authorization: str | None = None) -> dict[str, Any]:
    """A new upload; each part's credential carries the caller's own Authorization, so
    with --auth the parts are sent as the user who may write to the run."""
    run_id, rel = target(state, path, params.text("path"))
    state.store.log_artifacts(run_id, [])  # records nothing; with --auth, checks EDIT
    num_parts = params.integer("num_parts", 1)
    if not 1 <= num_parts <= MAX_PARTS:
        raise invalid(f"num_parts must be between 1 and {MAX_PARTS}, got {num_parts}")
    root = uploads_root(state)
    root.mkdir(parents=True, exist_ok=True)
    _sweep(root)
    upload_id = secrets.token_hex(16)
    where = root / upload_id
    where.mkdir()
    meta = where / f"{_META}.tmp"
    meta.write_text(json.dumps({"run_id": run_id, "path": rel, "num_parts": num_parts}))
    meta.rename(where / _META)
    return {"upload_id": upload_id,
            "credentials": [{"url": f"{base_url}{MPU_API}/upload/{upload_id}/{k}",
                             "part_number": k,
                             "headers": {"Authorization": authorization} if authorization else {}}
                            for k in range(1, num_parts + 1)]}


def _listed_parts(upload: Upload, params: Params) -> dict[int, str]:
    """part number → ETag, from a complete request: each of 1..N exactly once."""
    listed: dict[int, str] = {}
    for item in params.items("parts"):
        if not isinstance(item, dict):
            raise invalid("each entry of 'parts' needs a 'part_number' and an 'etag'")
        number = part_number(upload, item.get("part_number"))
        if number in listed:
            raise invalid(f"part {number} is listed twice")
        listed[number] = str(item.get("etag") or "").strip('"')
    missing = [k for k in range(1, upload.num_parts + 1) if k not in listed]
    if missing:
        raise invalid(f"upload {upload.id} has {upload.num_parts} part(s); 'parts' lacks "
                      f"{_numbers(missing)}")
    unsent = [k for k in listed if not upload.part(k).exists()]
    if unsent:
        raise invalid(f"part(s) {_numbers(sorted(unsent))} of upload {upload.id} were "
                      "never uploaded")
    return listed


def _numbers(found: list[int]) -> str:
    return ", ".join(map(str, found[:10])) + (", …" if len(found) > 10 else "")


def complete(state: ServerState, path: str, params: Params) -> dict[str, Any]:
    import blake3

    upload = matching(state, path, params)
    etags = _listed_parts(upload, params)
    # Claimed by a rename: a second complete, or a part arriving now, finds no upload.
    claimed = upload.dir.with_name(f"{upload.id}.completing")
    try:
        upload.dir.rename(claimed)
    except FileNotFoundError:
        raise NotFoundError(f"multipart upload {upload.id} was completed or aborted "
                            "meanwhile") from None
    tmp = new_tmp(state)
    try:
        whole = blake3.blake3()
        size = 0
        with open(tmp, "wb") as out:
            for number in range(1, upload.num_parts + 1):
                part = blake3.blake3()
                with open(claimed / upload.part(number).name, "rb") as f:
                    while chunk := f.read(CHUNK):
                        part.update(chunk)
                        whole.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
                if part.hexdigest() != etags[number]:
                    raise invalid(f"part {number} of upload {upload.id} does not match its "
                                  f"ETag {etags[number]!r} (it was replaced or damaged); "
                                  "the upload is discarded, start it again")
            out.flush()
            os.fsync(out.fileno())
        keep(state, tmp, upload.run_id, upload.rel, whole.hexdigest(), size)
    finally:
        tmp.unlink(missing_ok=True)
        shutil.rmtree(claimed, ignore_errors=True)
    return {}


def abort(state: ServerState, path: str, params: Params) -> dict[str, Any]:
    upload = matching(state, path, params)
    shutil.rmtree(upload.dir, ignore_errors=True)
    return {}


# -- routes ----------------------------------------------------------------------------------

@router.post(MPU_API + "/create/{path:path}", include_in_schema=False)
@answering
async def create_route(path: str, request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    from cairn.server.app import state_of

    base_url = str(request.base_url).rstrip("/")
    found = await run_in_threadpool(create, state_of(request), path,
                                    await read_params(request), base_url,
                                    request.headers.get("authorization"))
    return JSONResponse(found)


@router.post(MPU_API + "/complete/{path:path}", include_in_schema=False)
@answering
async def complete_route(path: str, request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    from cairn.server.app import state_of

    found = await run_in_threadpool(complete, state_of(request), path,
                                    await read_params(request))
    return JSONResponse(found)


@router.post(MPU_API + "/abort/{path:path}", include_in_schema=False)
@answering
async def abort_route(path: str, request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    from cairn.server.app import state_of

    found = await run_in_threadpool(abort, state_of(request), path,
                                    await read_params(request))
    return JSONResponse(found)


@router.put(MPU_API + "/upload/{upload_id}/{number}", include_in_schema=False)
@answering
async def part_route(upload_id: str, number: str, request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    from cairn.server.app import state_of

    upload = await run_in_threadpool(load, state_of(request), upload_id)
    k = part_number(upload, number)
    tmp = upload.dir / f"{k:05d}.{secrets.token_hex(8)}.tmp"
    try:
        digest, _ = await receive_into(request, tmp)
        os.replace(tmp, upload.part(k))  # a retried part replaces the earlier one
    except FileNotFoundError:  # completed or aborted while this part arrived
        tmp.unlink(missing_ok=True)
        raise NotFoundError(f"multipart upload {upload_id!r} was completed or aborted "
                            f"while part {k} arrived") from None
    return JSONResponse({}, headers={"ETag": f'"{digest}"'})
