"""The server's artifact store by digest: what a Cairn client sends after logging
artifacts or a model, and fetches before materializing one.

    POST /objects/missing      which of these digests the server lacks
    PUT  /objects/{digest}     the bytes, streamed to disk and hashed as they arrive;
                               refused (400) unless they hash to `digest`
    GET  /objects/{digest}     the bytes, streamed, hashed on the way out
    GET  /objects/referenced   every digest a version or a live run names (gc's question)
    POST /objects/referenced   the same, as if the runs in the body were deleted and the
                               versions in it not registered
    POST /objects/of-runs      the digests the artifacts of these runs name (retention)
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from cairn.errors import IntegrityError, NotFoundError
from cairn.objects.odb import check_oid
from cairn.server.api_v1.common import answer, store_of
from cairn.server.app import state_of

router = APIRouter(tags=["objects"])
MAX_ASKED = 100_000


class Digests(BaseModel):
    oids: list[str] = Field(max_length=MAX_ASKED)


@router.get("/objects/referenced", response_model=list[str])
def referenced_digests(request: Request) -> Response:
    return answer(list[str], sorted(store_of(request).referenced_digests()))


class VersionRef(BaseModel):
    name: str
    version: int


class Excluding(BaseModel):
    excluding_runs: list[str] = Field(default_factory=list, max_length=MAX_ASKED)
    excluding_versions: list[VersionRef] = Field(default_factory=list, max_length=MAX_ASKED)


@router.post("/objects/referenced", response_model=list[str])
def referenced_digests_excluding(body: Excluding, request: Request) -> Response:
    """As GET, as if these runs were deleted (`cairn retention apply` asks before it
    deletes them) and these versions not registered (`cairn tier apply` asks what else
    names an Archived version's objects)."""
    versions = [(v.name, v.version) for v in body.excluding_versions]
    return answer(list[str], sorted(store_of(request).referenced_digests(body.excluding_runs,
                                                                        versions)))


class RunIds(BaseModel):
    run_ids: list[str] = Field(max_length=MAX_ASKED)


@router.post("/objects/of-runs", response_model=dict[str, bool])
def digests_of_runs(body: RunIds, request: Request) -> Response:
    """Every digest these runs' artifacts name → whether it is a directory manifest
    (`cairn retention apply`'s candidates, in one question)."""
    return answer(dict[str, bool], store_of(request).digests_of_runs(body.run_ids))


@router.post("/objects/missing", response_model=Digests)
def missing_objects(body: Digests, request: Request) -> Response:
    odb = state_of(request).artifacts
    asked = [check_oid(oid) for oid in dict.fromkeys(body.oids)]
    have = odb.exists_many(asked)
    return answer(Digests, Digests(oids=[oid for oid in asked if oid not in have]))


@router.put("/objects/{digest}", status_code=201,
            openapi_extra={"requestBody": {"content": {"application/octet-stream": {
                "schema": {"type": "string", "format": "binary"}}}, "required": True}})
async def upload_object(digest: str, request: Request) -> Response:
    from starlette.concurrency import run_in_threadpool

    from cairn.server.mlflow_compat.artifacts import receive_body, store_received

    check_oid(digest)
    state = state_of(request)
    tmp, got, _size = await receive_body(state, request)
    if got != digest:
        tmp.unlink(missing_ok=True)
        raise IntegrityError(f"the bytes sent for object {digest} hash to {got}: refused "
                             "(corrupted on the way, or a wrong name); send them again", digest)
    try:
        await run_in_threadpool(store_received, state, tmp, digest)
    finally:
        tmp.unlink(missing_ok=True)
    return Response(b"{}", status_code=201, media_type="application/json")


@router.get("/objects/{digest}", response_class=StreamingResponse,
            responses={200: {"content": {"application/octet-stream": {}}}})
def download_object(digest: str, request: Request) -> Response:
    from cairn.server.mlflow_compat.artifacts import stream_object

    check_oid(digest)
    odb = state_of(request).artifacts
    if not odb.exists(digest):
        raise NotFoundError(f"the server has no object {digest}")
    return StreamingResponse(stream_object(odb, digest), media_type="application/octet-stream",
                             headers={"Content-Length": str(odb.size(digest))})
