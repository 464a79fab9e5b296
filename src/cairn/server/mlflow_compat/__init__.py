"""The MLflow-compatible subset: the REST routes the real `mlflow` client calls
(/api/2.0/mlflow/…, /api/2.0/mlflow-artifacts/…), by family:

    tracking.py       experiments, runs, metrics, params, tags, artifacts/list
    logged_models.py  MLflow 3's logged-models/… and runs/outputs
    artifacts.py      mlflow-artifacts/artifacts/<path>: PUT, GET, list, DELETE
    multipart.py      mlflow-artifacts/mpu/create|complete|abort and the parts' uploads
    registry.py       registered-models/…, model-versions/…, aliases

`routes` (the JSON routes of the first three, one table) and `router` (the artifact
routes, and the catch-all) are added to the app before /api/v1's. Any other path under
them answers ENDPOINT_NOT_FOUND (404), which the client reads as
"this server lacks that feature" and, where it can, falls back.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from cairn.server.mlflow_compat import (
    artifacts,
    logged_models,
    multipart,
    registry,
    tracking,
)
from cairn.server.mlflow_compat.common import RouteTable

# The JSON routes, looked up in one table; the streaming ones are FastAPI routes.
routes = RouteTable([*tracking.ROUTES, *logged_models.ROUTES, *registry.ROUTES])
router = APIRouter()
for _family in (artifacts, multipart):
    router.include_router(_family.router)


@router.api_route("/api/2.0/mlflow/{rest:path}", include_in_schema=False,
                  methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
@router.api_route("/ajax-api/2.0/mlflow/{rest:path}", include_in_schema=False,
                  methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
@router.api_route("/api/2.0/mlflow-artifacts/{rest:path}", include_in_schema=False,
                  methods=["GET", "POST", "PATCH", "PUT", "DELETE"])
async def unknown(rest: str, request: Request) -> JSONResponse:
    return JSONResponse({"error_code": "ENDPOINT_NOT_FOUND",
                         "message": f"{request.method} {request.url.path} is not part of "
                                    "Cairn's MLflow-compatible API (docs/server.md)"},
                        status_code=404)
