"""Registered models, versions, tags, aliases, audit history and lineage."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from cairn.server.api_v1.common import Page, acting, answer, backend_of, done, page, store_of
from cairn.store.base import PackageRecord
from cairn.store.entities import AuditEntry, ModelVersion, RegisteredModel

Strings = Annotated[list[str] | None, Query()]  # a repeated query parameter
router = APIRouter(tags=["registry"])


class ModelCreate(BaseModel):
    name: str
    tags: dict[str, str] | None = None
    description: str = ""
    user_id: str = ""


class Description(BaseModel):
    description: str
    user_id: str = ""


class Rename(BaseModel):
    new_name: str
    user_id: str = ""


class Tag(BaseModel):
    key: str
    value: str


class VersionCreate(BaseModel):
    source: str
    digest: str
    run_id: str | None = None
    tags: dict[str, str] | None = None
    description: str = ""
    user_id: str = ""


class VersionSearch(BaseModel):
    filter: str = ""
    max_results: int = 10000
    order_by: list[str] | None = None
    page_token: str | None = None


class AuditCreate(BaseModel):
    version: int | None = None
    action: str
    user_id: str = ""
    reason: str = ""
    details: dict[str, Any] | None = None
    to_value: str | None = None


class PackageCreate(BaseModel):
    digest: str
    object_id: str
    size: int
    user_id: str = ""


# -- registered models -------------------------------------------------------------------

@router.post("/models", response_model=RegisteredModel)
def create_registered_model(body: ModelCreate, request: Request) -> Response:
    found = store_of(request).create_registered_model(body.name, body.tags, body.description,
                                                      acting(request, body.user_id))
    return answer(RegisteredModel, found)


@router.get("/models", response_model=Page[RegisteredModel])
def search_registered_models(request: Request, filter: str = "", max_results: int = 100,
                             order_by: Strings = None,
                             page_token: str | None = None) -> Response:
    found = store_of(request).search_registered_models(filter, max_results, order_by,
                                                       page_token)
    return page(RegisteredModel, found)


@router.post("/model-versions/search", response_model=Page[ModelVersion])
def search_model_versions(body: VersionSearch, request: Request) -> Response:
    found = store_of(request).search_model_versions(body.filter, body.max_results,
                                                    body.order_by, body.page_token)
    return page(ModelVersion, found)


@router.get("/models/{name}", response_model=RegisteredModel)
def get_registered_model(name: str, request: Request) -> Response:
    return answer(RegisteredModel, store_of(request).get_registered_model(name))


@router.patch("/models/{name}", response_model=RegisteredModel)
def update_registered_model(name: str, body: Description, request: Request) -> Response:
    return answer(RegisteredModel,
                  store_of(request).update_registered_model(name, body.description))


@router.post("/models/{name}/rename", response_model=RegisteredModel)
def rename_registered_model(name: str, body: Rename, request: Request) -> Response:
    found = store_of(request).rename_registered_model(name, body.new_name,
                                                      acting(request, body.user_id))
    return answer(RegisteredModel, found)


@router.delete("/models/{name}")
def delete_registered_model(name: str, request: Request, user_id: str = "") -> Response:
    store_of(request).delete_registered_model(name, acting(request, user_id))
    return done()


@router.put("/models/{name}/tags")
def set_registered_model_tag(name: str, body: Tag, request: Request) -> Response:
    store_of(request).set_registered_model_tag(name, body.key, body.value)
    return done()


@router.delete("/models/{name}/tags")
def delete_registered_model_tag(name: str, key: str, request: Request) -> Response:
    store_of(request).delete_registered_model_tag(name, key)
    return done()


# -- versions ------------------------------------------------------------------------------

@router.post("/models/{name}/versions", response_model=ModelVersion)
def create_model_version(name: str, body: VersionCreate, request: Request) -> Response:
    found = store_of(request).create_model_version(
        name, body.source, body.digest, body.run_id, body.tags, body.description,
        acting(request, body.user_id))
    return answer(ModelVersion, found)


@router.get("/models/{name}/versions/{version}", response_model=ModelVersion)
def get_model_version(name: str, version: int, request: Request) -> Response:
    return answer(ModelVersion, store_of(request).get_model_version(name, version))


@router.patch("/models/{name}/versions/{version}", response_model=ModelVersion)
def update_model_version(name: str, version: int, body: Description,
                         request: Request) -> Response:
    found = store_of(request).update_model_version(name, version, body.description,
                                                   acting(request, body.user_id))
    return answer(ModelVersion, found)


@router.delete("/models/{name}/versions/{version}")
def delete_model_version(name: str, version: int, request: Request,
                         user_id: str = "") -> Response:
    store_of(request).delete_model_version(name, version, acting(request, user_id))
    return done()


@router.put("/models/{name}/versions/{version}/tags")
def set_model_version_tag(name: str, version: int, body: Tag, request: Request) -> Response:
    store_of(request).set_model_version_tag(name, version, body.key, body.value)
    return done()


@router.delete("/models/{name}/versions/{version}/tags")
def delete_model_version_tag(name: str, version: int, key: str,
                             request: Request) -> Response:
    store_of(request).delete_model_version_tag(name, version, key)
    return done()


@router.get("/models/{name}/latest", response_model=list[ModelVersion])
def get_latest_versions(name: str, request: Request,
                        stages: Strings = None) -> Response:
    return answer(list[ModelVersion], store_of(request).get_latest_versions(name, stages))


@router.get("/models/{name}/stages/{stage}/holders", response_model=list[int])
def get_stage_holders(name: str, stage: str, request: Request) -> Response:
    return answer(list[int], list(store_of(request).get_stage_holders(name, stage)))


@router.get("/models/{name}/aliases/{alias}", response_model=ModelVersion)
def get_model_version_by_alias(name: str, alias: str, request: Request) -> Response:
    return answer(ModelVersion, store_of(request).get_model_version_by_alias(name, alias))


# -- history and lineage -------------------------------------------------------------------

@router.get("/models/{name}/audit", response_model=list[AuditEntry])
def get_audit_log(name: str, request: Request, version: int | None = None) -> Response:
    return answer(list[AuditEntry], store_of(request).get_audit_log(name, version))


@router.post("/models/{name}/audit", response_model=AuditEntry)
def add_audit_entry(name: str, body: AuditCreate, request: Request) -> Response:
    found = store_of(request).add_audit_entry(name, body.version, body.action,
                                              acting(request, body.user_id), body.reason,
                                              body.details, body.to_value)
    return answer(AuditEntry, found)


@router.get("/models/{name}/versions/{version}/lineage")
def lineage(name: str, version: int, request: Request) -> dict[str, Any]:
    """The version's whole chain: commit, data, params, stage, run, metrics, transitions."""
    from cairn.registry.lineage import model_lineage

    b = backend_of(request)
    return model_lineage(b.store, b.odb, f"models:/{name}/{version}", None)


# -- model packages (cairn package build records each against its version) ---------------

@router.post("/models/{name}/versions/{version}/packages", response_model=PackageRecord)
def record_package(name: str, version: int, body: PackageCreate, request: Request) -> Response:
    found = store_of(request).record_package(name, version, body.digest, body.object_id,
                                             body.size, acting(request, body.user_id))
    return answer(PackageRecord, found)


@router.get("/models/{name}/versions/{version}/packages", response_model=list[PackageRecord])
def list_version_packages(name: str, version: int, request: Request) -> Response:
    return answer(list[PackageRecord], store_of(request).list_packages(name, version))


@router.get("/models/{name}/packages", response_model=list[PackageRecord])
def list_model_packages(name: str, request: Request) -> Response:
    return answer(list[PackageRecord], store_of(request).list_packages(name))


@router.get("/packages", response_model=list[PackageRecord])
def list_packages(request: Request) -> Response:
    return answer(list[PackageRecord], store_of(request).list_packages())
