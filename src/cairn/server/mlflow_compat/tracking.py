"""Experiments and runs under /api/2.0/mlflow/, in MLflow's JSON shapes: experiment ids
as strings, times in ms, a run's info with both run_id and run_uuid, its data as lists.

A run's artifact_uri is `mlflow-artifacts:/<experiment>/<run>/artifacts`: the client
resolves that against the tracking URI and uploads through this server's artifact
routes, which record what it sends in the run's artifact tree (artifacts.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from cairn.errors import ConflictError
from cairn.server.mlflow_compat import logged_models
from cairn.server.mlflow_compat.common import (
    Params,
    already_exists,
    invalid,
    not_implemented,
    number,
    pairs,
    run_artifact_uri,
)
from cairn.server.state import ServerState
from cairn.store.base import as_view_type
from cairn.store.entities import Experiment, Metric, Param, Run, RunTag
from cairn.tracking.artifacts import children, clean_artifact_path


def experiment_json(e: Experiment) -> dict[str, Any]:
    return {"experiment_id": e.experiment_id, "name": e.name,
            "artifact_location": f"mlflow-artifacts:/{e.experiment_id}",
            "lifecycle_stage": e.lifecycle_stage, "creation_time": e.creation_time,
            "last_update_time": e.last_update_time, "tags": pairs(e.tags)}


def run_info_json(run: Run) -> dict[str, Any]:
    info = run.info
    found: dict[str, Any] = {
        "run_id": info.run_id, "run_uuid": info.run_id, "run_name": info.run_name,
        "experiment_id": info.experiment_id, "user_id": info.user_id,
        "status": info.status, "start_time": info.start_time,
        "artifact_uri": run_artifact_uri(info.experiment_id, info.run_id),
        "lifecycle_stage": info.lifecycle_stage}
    if info.end_time is not None:
        found["end_time"] = info.end_time
    return found


def run_json(state: ServerState, run: Run, *, exact_metrics: bool = True) -> dict[str, Any]:
    """The run as MLflow shows it. Cairn keeps each metric's latest value with the run;
    `exact_metrics` reads each one's history for its step and timestamp (get-run), a
    search gives the run's start time and step 0 instead of a query per metric."""
    metrics = []
    for key, value in sorted(run.data.metrics.items()):
        last = None
        if exact_metrics:
            history = state.store.get_metric_history(run.info.run_id, key)
            last = history[-1] if history else None
        metrics.append({"key": key, "value": number(value),
                        "timestamp": last.timestamp if last else run.info.start_time,
                        "step": last.step if last else 0})
    outputs = logged_models.outputs_of(run)
    return {"info": run_info_json(run),
            "data": {"metrics": metrics, "params": pairs(run.data.params),
                     "tags": pairs(run.data.tags)},
            "inputs": {}, "outputs": {"model_outputs": outputs} if outputs else {}}


def metric_json(m: Metric) -> dict[str, Any]:
    return {"key": m.key, "value": number(m.value), "timestamp": m.timestamp, "step": m.step}


def _now() -> int:
    return int(time.time() * 1000)


# -- experiments -------------------------------------------------------------------------

def create_experiment(state: ServerState, p: Params) -> dict[str, Any]:
    name = p.text("name")
    try:
        experiment_id = state.store.create_experiment(name, None, p.pairs("tags") or None)
    except ConflictError:
        raise already_exists(f"experiment '{name}' already exists") from None
    return {"experiment_id": experiment_id}


def get_experiment(state: ServerState, p: Params) -> dict[str, Any]:
    return {"experiment": experiment_json(state.store.get_experiment(p.text("experiment_id")))}


def get_experiment_by_name(state: ServerState, p: Params) -> dict[str, Any]:
    from cairn.server.mlflow_compat.common import MlflowError

    name = p.text("experiment_name")
    found = state.store.get_experiment_by_name(name)
    if found is None:
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"no experiment named '{name}'", 404)
    return {"experiment": experiment_json(found)}


def search_experiments(state: ServerState, p: Params) -> dict[str, Any]:
    page = state.store.search_experiments(
        as_view_type(p.text("view_type", "ACTIVE_ONLY")), p.integer("max_results", 1000),
        p.opt("filter"), [str(o) for o in p.items("order_by")] or None, p.opt("page_token"))
    answer: dict[str, Any] = {"experiments": [experiment_json(e) for e in page]}
    if page.token:
        answer["next_page_token"] = page.token
    return answer


def delete_experiment(state: ServerState, p: Params) -> dict[str, Any]:
    state.store.delete_experiment(p.text("experiment_id"))
    return {}


def restore_experiment(state: ServerState, p: Params) -> dict[str, Any]:
    state.store.restore_experiment(p.text("experiment_id"))
    return {}


def update_experiment(state: ServerState, p: Params) -> dict[str, Any]:
    experiment = state.store.get_experiment(p.text("experiment_id"))
    new_name = p.opt("new_name")
    if new_name is None or new_name == experiment.name:
        return {}
    raise not_implemented("renaming an experiment",
                          "Cairn's store keeps an experiment's name for its lifetime")


def set_experiment_tag(state: ServerState, p: Params) -> dict[str, Any]:
    state.store.set_experiment_tag(p.text("experiment_id"), p.text("key"),
                                   p.text("value", ""))
    return {}


def delete_experiment_tag(state: ServerState, p: Params) -> dict[str, Any]:
    raise not_implemented("deleting an experiment tag", "set it to another value instead")


# -- runs ----------------------------------------------------------------------------------

def _run_id(p: Params) -> str:
    return p.text("run_id", alias="run_uuid")


def create_run(state: ServerState, p: Params) -> dict[str, Any]:
    tags = [RunTag(k, v) for k, v in p.pairs("tags").items()]
    run = state.store.create_run(p.text("experiment_id", "0"), p.text("user_id", ""),
                                 p.integer("start_time", _now()), tags, p.opt("run_name"))
    return {"run": run_json(state, run)}


def get_run(state: ServerState, p: Params) -> dict[str, Any]:
    return {"run": run_json(state, state.store.get_run(_run_id(p)))}


def update_run(state: ServerState, p: Params) -> dict[str, Any]:
    run = state.store.update_run_info(_run_id(p), p.opt("status"), p.opt_integer("end_time"),
                                      p.opt("run_name"))
    return {"run_info": run_info_json(run)}


def delete_run(state: ServerState, p: Params) -> dict[str, Any]:
    state.store.delete_run(p.text("run_id"))
    return {}


def restore_run(state: ServerState, p: Params) -> dict[str, Any]:
    state.store.restore_run(p.text("run_id"))
    return {}


def search_runs(state: ServerState, p: Params) -> dict[str, Any]:
    experiment_ids = [str(e) for e in p.items("experiment_ids")]
    if not experiment_ids:
        raise invalid("search-runs needs experiment_ids (one or more experiment ids)")
    page = state.store.search_runs(
        experiment_ids, p.text("filter", ""), as_view_type(p.text("run_view_type",
                                                                   "ACTIVE_ONLY")),
        p.integer("max_results", 1000), [str(o) for o in p.items("order_by")] or None,
        p.opt("page_token"))
    answer: dict[str, Any] = {"runs": [run_json(state, r, exact_metrics=False)
                                       for r in page]}
    if page.token:
        answer["next_page_token"] = page.token
    return answer


def _log(state: ServerState, run_id: str, metrics: Sequence[Metric] = (),
         params: Sequence[Param] = (), tags: Sequence[RunTag] = ()) -> None:
    try:
        state.store.log_batch(run_id, metrics, params, tags)
    except ConflictError as e:  # a param logged again with another value: MLflow's 400
        raise invalid(str(e)) from None


def _metric(p: Params) -> Metric:
    return Metric(p.text("key"), p.real("value"), p.integer("timestamp", _now()),
                  p.integer("step", 0))


def log_metric(state: ServerState, p: Params) -> dict[str, Any]:
    _log(state, _run_id(p), metrics=[_metric(p)])
    return {}


def log_param(state: ServerState, p: Params) -> dict[str, Any]:
    _log(state, _run_id(p), params=[Param(p.text("key"), p.text("value", ""))])
    return {}


def set_tag(state: ServerState, p: Params) -> dict[str, Any]:
    _log(state, _run_id(p), tags=[RunTag(p.text("key"), p.text("value", ""))])
    return {}


def delete_tag(state: ServerState, p: Params) -> dict[str, Any]:
    state.store.delete_tag(p.text("run_id"), p.text("key"))
    return {}


def log_batch(state: ServerState, p: Params) -> dict[str, Any]:
    metrics = []
    for item in p.items("metrics"):
        if not isinstance(item, dict):
            raise invalid("each entry of 'metrics' must be an object")
        metrics.append(_metric(Params(item)))
    params = [Param(k, v) for k, v in p.pairs("params").items()]
    tags = [RunTag(k, v) for k, v in p.pairs("tags").items()]
    _log(state, p.text("run_id"), metrics, params, tags)
    return {}


def get_metric_history(state: ServerState, p: Params) -> dict[str, Any]:
    history = state.store.get_metric_history(_run_id(p), p.text("metric_key"))
    return {"metrics": [metric_json(m) for m in history]}


def list_artifacts(state: ServerState, p: Params) -> dict[str, Any]:
    from cairn.server.mlflow_compat.artifacts import checked_path

    run = state.store.get_run(_run_id(p))
    path = clean_artifact_path(checked_path(p.text("path", "")))
    entries = state.store.list_artifacts(run.info.run_id, path or None)
    files = [{"path": e.path, "is_dir": e.is_dir, **({} if e.is_dir else
                                                      {"file_size": e.size})}
             for e in children(entries, path)]
    return {"root_uri": run_artifact_uri(run.info.experiment_id, run.info.run_id),
            "files": files}


ROUTES = [
    ("POST", "/experiments/create", create_experiment),
    ("GET", "/experiments/get", get_experiment),
    ("GET", "/experiments/get-by-name", get_experiment_by_name),
    ("POST", "/experiments/search", search_experiments),
    ("GET", "/experiments/search", search_experiments),
    ("POST", "/experiments/delete", delete_experiment),
    ("POST", "/experiments/restore", restore_experiment),
    ("POST", "/experiments/update", update_experiment),
    ("POST", "/experiments/set-experiment-tag", set_experiment_tag),
    ("POST", "/experiments/delete-experiment-tag", delete_experiment_tag),
    ("POST", "/runs/create", create_run),
    ("GET", "/runs/get", get_run),
    ("POST", "/runs/update", update_run),
    ("POST", "/runs/delete", delete_run),
    ("POST", "/runs/restore", restore_run),
    ("POST", "/runs/search", search_runs),
    ("POST", "/runs/log-metric", log_metric),
    ("POST", "/runs/log-parameter", log_param),
    ("POST", "/runs/set-tag", set_tag),
    ("POST", "/runs/delete-tag", delete_tag),
    ("POST", "/runs/log-batch", log_batch),
    ("GET", "/metrics/get-history", get_metric_history),
    ("GET", "/artifacts/list", list_artifacts),
]
