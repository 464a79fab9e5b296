"""Experiments, runs, their metrics, params, tags and artifact records."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from cairn.errors import NotFoundError
from cairn.server.api_v1.common import Page, acting, answer, done, page, store_of
from cairn.store.base import ACTIVE_ONLY
from cairn.store.entities import Artifact, Experiment, Metric, Param, Run, RunTag

Strings = Annotated[list[str] | None, Query()]  # a repeated query parameter
router = APIRouter(tags=["tracking"])
MAX_DELETED = 100_000  # run ids in one POST /runs/delete


class ExperimentCreate(BaseModel):
    name: str
    artifact_location: str | None = None
    tags: dict[str, str] | None = None


class ExperimentCreated(BaseModel):
    experiment_id: str


class Tag(BaseModel):
    key: str
    value: str


class RunCreate(BaseModel):
    experiment_id: str
    user_id: str = ""
    start_time: int
    tags: list[RunTag] = Field(default_factory=list)
    run_name: str | None = None


class RunUpdate(BaseModel):
    status: str | None = None
    end_time: int | None = None
    run_name: str | None = None


class RunFinish(BaseModel):
    status: str
    end_time: int
    metrics: list[Metric] = Field(default_factory=list)


class Batch(BaseModel):
    """Many metrics, params and tags in one transaction: the one write path for run data."""

    metrics: list[Metric] = Field(default_factory=list)
    params: list[Param] = Field(default_factory=list)
    tags: list[RunTag] = Field(default_factory=list)


class RunSearch(BaseModel):
    experiment_ids: list[str]
    filter: str = ""
    view_type: str = ACTIVE_ONLY
    max_results: int = 1000
    order_by: list[str] | None = None
    page_token: str | None = None


class ArtifactRecords(BaseModel):
    artifacts: list[Artifact]


class ArtifactReplacement(BaseModel):
    path: str  # the records at this path and below go; `artifacts` (inside it) come
    artifacts: list[Artifact] = Field(default_factory=list)


class Removed(BaseModel):
    removed: int


# -- experiments -----------------------------------------------------------------------

@router.post("/experiments", response_model=ExperimentCreated)
def create_experiment(body: ExperimentCreate, request: Request) -> Response:
    found = store_of(request).create_experiment(body.name, body.artifact_location, body.tags)
    return answer(ExperimentCreated, ExperimentCreated(experiment_id=found))


@router.get("/experiments", response_model=Page[Experiment])
def search_experiments(request: Request, view_type: str = ACTIVE_ONLY,
                       max_results: int = 1000, filter: str | None = None,
                       order_by: Strings = None,
                       page_token: str | None = None) -> Response:
    found = store_of(request).search_experiments(view_type, max_results, filter, order_by,
                                                 page_token)
    return page(Experiment, found)


@router.get("/experiments/by-name", response_model=Experiment)
def get_experiment_by_name(name: str, request: Request) -> Response:
    found = store_of(request).get_experiment_by_name(name)
    if found is None:
        raise NotFoundError(f"no experiment named {name!r}")
    return answer(Experiment, found)


@router.get("/experiments/{experiment_id}", response_model=Experiment)
def get_experiment(experiment_id: str, request: Request) -> Response:
    return answer(Experiment, store_of(request).get_experiment(experiment_id))


@router.delete("/experiments/{experiment_id}")
def delete_experiment(experiment_id: str, request: Request) -> Response:
    store_of(request).delete_experiment(experiment_id)
    return done()


@router.post("/experiments/{experiment_id}/restore")
def restore_experiment(experiment_id: str, request: Request) -> Response:
    store_of(request).restore_experiment(experiment_id)
    return done()


@router.put("/experiments/{experiment_id}/tags")
def set_experiment_tag(experiment_id: str, body: Tag, request: Request) -> Response:
    store_of(request).set_experiment_tag(experiment_id, body.key, body.value)
    return done()


# -- runs ------------------------------------------------------------------------------

@router.post("/runs", response_model=Run)
def create_run(body: RunCreate, request: Request) -> Response:
    run = store_of(request).create_run(body.experiment_id, acting(request, body.user_id),
                                       body.start_time, body.tags, body.run_name)
    return answer(Run, run)


@router.post("/runs/search", response_model=Page[Run])
def search_runs(body: RunSearch, request: Request) -> Response:
    found = store_of(request).search_runs(body.experiment_ids, body.filter, body.view_type,
                                          body.max_results, body.order_by, body.page_token)
    return page(Run, found)


@router.get("/runs/{run_id}", response_model=Run)
def get_run(run_id: str, request: Request) -> Response:
    return answer(Run, store_of(request).get_run(run_id))


@router.patch("/runs/{run_id}", response_model=Run)
def update_run(run_id: str, body: RunUpdate, request: Request) -> Response:
    run = store_of(request).update_run_info(run_id, body.status, body.end_time, body.run_name)
    return answer(Run, run)


@router.post("/runs/{run_id}/finish")
def finish_run(run_id: str, body: RunFinish, request: Request) -> Response:
    store_of(request).finish_run(run_id, body.status, body.end_time, body.metrics)
    return done()


@router.delete("/runs/{run_id}")
def delete_run(run_id: str, request: Request) -> Response:
    store_of(request).delete_run(run_id)
    return done()


class RunIds(BaseModel):
    run_ids: list[str] = Field(max_length=MAX_DELETED)


@router.post("/runs/delete", response_model=list[str])
def delete_runs(body: RunIds, request: Request) -> Response:
    """Soft-delete these runs in one transaction; the ids of those a registered version
    keeps, left as they were (`cairn retention apply`)."""
    return answer(list[str], store_of(request).delete_runs(body.run_ids))


@router.post("/runs/{run_id}/restore")
def restore_run(run_id: str, request: Request) -> Response:
    store_of(request).restore_run(run_id)
    return done()


@router.post("/runs/{run_id}/batch")
def log_batch(run_id: str, body: Batch, request: Request) -> Response:
    store_of(request).log_batch(run_id, body.metrics, body.params, body.tags)
    return done()


@router.delete("/runs/{run_id}/tags")
def delete_tag(run_id: str, key: str, request: Request) -> Response:
    store_of(request).delete_tag(run_id, key)
    return done()


@router.get("/runs/{run_id}/metrics/history", response_model=list[Metric])
def get_metric_history(run_id: str, key: str, request: Request) -> Response:
    return answer(list[Metric], store_of(request).get_metric_history(run_id, key))


@router.post("/runs/{run_id}/artifacts")
def log_artifacts(run_id: str, body: ArtifactRecords, request: Request) -> Response:
    store_of(request).log_artifacts(run_id, body.artifacts)
    return done()


@router.post("/runs/{run_id}/artifacts/replace", response_model=Removed)
def replace_artifacts(run_id: str, body: ArtifactReplacement, request: Request) -> Response:
    removed = store_of(request).replace_artifacts(run_id, body.path, body.artifacts)
    return answer(Removed, Removed(removed=removed))


@router.get("/runs/{run_id}/artifacts", response_model=list[Artifact])
def list_artifacts(run_id: str, request: Request, path: str | None = None) -> Response:
    return answer(list[Artifact], store_of(request).list_artifacts(run_id, path))
