"""MLflow 3's LoggedModels (logged-models create/get/finalize/search, their tags and
params, runs/outputs), the calls `mlflow.<flavor>.log_model` makes.

Cairn's store has no LoggedModel table, so a logged model lives with its run: its
artifacts in the run's tree at `<name>/` (so `runs:/<run>/<name>` is the model directory
both to Cairn and to the mlflow client), its metadata as one JSON run tag
`cairn.mlflow.logged_model.<model id>` (hidden from MLflow's view of the run's tags).
Its id, `m-<run id>-<8 hex>`, says which run holds it. A model logged outside any run
gets a run of its own to hold it.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any

from cairn import paths
from cairn.errors import NotFoundError, UserError
from cairn.server.mlflow_compat.common import (
    HIDDEN_TAG_PREFIX,
    MlflowError,
    Params,
    invalid,
    run_artifact_uri,
)
from cairn.server.state import ServerState
from cairn.store.entities import Run, RunTag

MODEL_TAG = HIDDEN_TAG_PREFIX + "logged_model."
OUTPUTS_TAG = HIDDEN_TAG_PREFIX + "outputs"
HAS_MODELS_TAG = HIDDEN_TAG_PREFIX + "has_logged_models"
HOLDER_TAG = HIDDEN_TAG_PREFIX + "logged_model_holder"
STATUSES = ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED")
_ID = re.compile(r"^m-([0-9a-f]{32})-[0-9a-f]{8}$")
_CLAUSE = re.compile(r"^\s*([A-Za-z_.`]+)\s*(=|!=)\s*'((?:[^']|'')*)'\s*$")


def _now() -> int:
    return int(time.time() * 1000)


def run_of_model(model_id: str) -> str:
    found = _ID.match(model_id)
    if found is None:
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"no logged model {model_id!r} (ids "
                          "given by this server look like m-<run id>-<8 hex digits>)", 404)
    return found.group(1)


def _records(run: Run) -> dict[str, dict[str, Any]]:
    found = {}
    for key, value in run.data.tags.items():
        if key.startswith(MODEL_TAG):
            try:
                found[key[len(MODEL_TAG):]] = json.loads(value)
            except ValueError:
                continue  # not ours after all: never fail a run's read on it
    return found


def _load(state: ServerState, model_id: str) -> tuple[Run, dict[str, Any]]:
    run = state.store.get_run(run_of_model(model_id))
    record = _records(run).get(model_id)
    if record is None:
        raise MlflowError("RESOURCE_DOES_NOT_EXIST", f"no logged model {model_id!r}", 404)
    return run, record


def _save(state: ServerState, run_id: str, model_id: str, record: dict[str, Any]) -> None:
    record["updated"] = _now()
    state.store.log_batch(run_id, tags=[
        RunTag(MODEL_TAG + model_id, json.dumps(record, sort_keys=True)),
        RunTag(HAS_MODELS_TAG, "true")])


def model_json(run: Run, model_id: str, record: dict[str, Any]) -> dict[str, Any]:
    info = run.info
    holder = info.run_id if run.data.tags.get(HOLDER_TAG) != "true" else ""
    return {"info": {
        "model_id": model_id, "experiment_id": info.experiment_id, "name": record["name"],
        "creation_timestamp_ms": record["created"], "last_updated_timestamp_ms":
            record.get("updated", record["created"]),
        "artifact_uri": f"{run_artifact_uri(info.experiment_id, info.run_id)}/"
                        f"{record['path']}",
        "status": record["status"],
        "model_type": record.get("model_type", ""), "source_run_id": holder,
        "status_message": "", "tags": [{"key": k, "value": v}
                                       for k, v in sorted(record["tags"].items())],
        "registrations": []},
        "data": {"params": [{"key": k, "value": v}
                            for k, v in sorted(record["params"].items())],
                 "metrics": []}}


def outputs_of(run: Run) -> list[dict[str, Any]]:
    """runs/outputs as recorded: the models this run produced, with their steps."""
    raw = run.data.tags.get(OUTPUTS_TAG)
    try:
        found = json.loads(raw) if raw else []
    except ValueError:
        return []
    return [o for o in found if isinstance(o, dict)]


def _artifact_path(run: Run, name: str, model_id: str) -> str:
    """`name` in the run's artifacts, or `name-<id tail>` if another model took it."""
    problem = paths.name_problem(name)
    if problem is not None:
        raise invalid(f"logged model name {name!r} {problem}")
    taken = {r.get("path") for r in _records(run).values()}
    return name if name not in taken else f"{name}-{model_id[-8:]}"


# -- routes --------------------------------------------------------------------------------

def create(state: ServerState, p: Params) -> dict[str, Any]:
    from cairn.server.mlflow_compat.artifacts import tree_lock

    experiment_id = p.text("experiment_id")
    name = p.text("name", "model")
    run_id = p.opt("source_run_id")
    if run_id is None:  # a model logged outside a run: a run of its own holds it
        state.store.get_experiment(experiment_id)
        holder = state.store.create_run(experiment_id, "", _now(),
                                        [RunTag(HOLDER_TAG, "true")], f"logged-model-{name}")
        state.store.update_run_info(holder.info.run_id, "FINISHED", _now())
        run_id = holder.info.run_id
    model_id = f"m-{run_id}-{uuid.uuid4().hex[:8]}"
    with tree_lock(run_id):
        run = state.store.get_run(run_id)
        if run.info.experiment_id != experiment_id:
            raise invalid(f"run {run_id} is in experiment {run.info.experiment_id}, not "
                          f"{experiment_id}")
        record = {"name": name, "path": _artifact_path(run, name, model_id),
                  "status": "LOGGED_MODEL_PENDING", "model_type": p.text("model_type", ""),
                  "params": p.pairs("params"), "tags": p.pairs("tags"),
                  "created": _now(), "creator": run.info.user_id}
        _save(state, run_id, model_id, record)
    run, record = _load(state, model_id)
    return {"model": model_json(run, model_id, record)}


def _update(state: ServerState, model_id: str, change: Any) -> dict[str, Any]:
    from cairn.server.mlflow_compat.artifacts import tree_lock

    run_id = run_of_model(model_id)
    with tree_lock(run_id):
        run, record = _load(state, model_id)
        change(record)
        _save(state, run_id, model_id, record)
    run, record = _load(state, model_id)
    return {"model": model_json(run, model_id, record)}


def _model_id(p: Params) -> str:
    return p.text("model_id")


def get(state: ServerState, p: Params) -> dict[str, Any]:
    run, record = _load(state, _model_id(p))
    return {"model": model_json(run, _model_id(p), record)}


def finalize(state: ServerState, p: Params) -> dict[str, Any]:
    status = p.text("status")
    if status not in STATUSES:
        raise invalid(f"status {status!r} is not one of {', '.join(STATUSES)}")
    return _update(state, _model_id(p), lambda r: r.__setitem__("status", status))


def set_tags(state: ServerState, p: Params) -> dict[str, Any]:
    tags = p.pairs("tags")
    return _update(state, _model_id(p), lambda r: r["tags"].update(tags))


def delete_tag(state: ServerState, p: Params) -> dict[str, Any]:
    key = p.text("tag_key")
    _update(state, _model_id(p), lambda r: r["tags"].pop(key, None))
    return {}


def log_params(state: ServerState, p: Params) -> dict[str, Any]:
    params = p.pairs("params")
    _update(state, _model_id(p), lambda r: r["params"].update(params))
    return {}


def delete(state: ServerState, p: Params) -> dict[str, Any]:
    model_id = _model_id(p)
    _load(state, model_id)
    state.store.delete_tag(run_of_model(model_id), MODEL_TAG + model_id)
    return {}


def log_outputs(state: ServerState, p: Params) -> dict[str, Any]:
    from cairn.server.mlflow_compat.artifacts import tree_lock

    run_id = p.text("run_id")
    added = []
    for item in p.items("models"):
        if not isinstance(item, dict) or not isinstance(item.get("model_id"), str):
            raise invalid("each entry of 'models' needs a model_id")
        _load(state, item["model_id"])
        added.append({"model_id": item["model_id"], "step": int(item.get("step") or 0)})
    with tree_lock(run_id):
        run = state.store.get_run(run_id)
        known = outputs_of(run)
        known += [o for o in added if o not in known]
        state.store.log_batch(run_id, tags=[RunTag(OUTPUTS_TAG, json.dumps(known))])
    return {}


def _matches(filter_string: str) -> Any:
    """A predicate for search's filter: `key = 'v'` / `key != 'v'` clauses joined by AND
    (name, model_id, source_run_id, model_type, status, tags.<k>, params.<k>)."""
    checks = []
    for clause in re.split(r"\s+AND\s+", filter_string.strip(), flags=re.IGNORECASE):
        if not clause:
            continue
        found = _CLAUSE.match(clause)
        if found is None:
            raise UserError(f"logged model filter {clause!r} is not supported here: use "
                            "key = 'value' (or !=) clauses joined by AND")
        key, op, value = found.group(1).replace("`", ""), found.group(2), \
            found.group(3).replace("''", "'")
        checks.append((key, op == "=", value))

    def matches(info: dict[str, Any], data: dict[str, Any]) -> bool:
        for key, equal, value in checks:
            if key.startswith("tags."):
                have = {t["key"]: t["value"] for t in info["tags"]}.get(key[5:])
            elif key.startswith("params."):
                have = {t["key"]: t["value"] for t in data["params"]}.get(key[7:])
            else:
                have = info.get(key.removeprefix("attributes."))
            if (have == value) != equal:
                return False
        return True

    return matches


def search(state: ServerState, p: Params) -> dict[str, Any]:
    from cairn.store.base import ALL

    experiment_ids = [str(e) for e in p.items("experiment_ids")]
    if not experiment_ids:
        raise invalid("logged-models/search needs experiment_ids")
    matches = _matches(p.text("filter", ""))
    found: list[dict[str, Any]] = []
    token = None
    for _ in range(1000):  # pages of runs holding logged models
        page = state.store.search_runs(experiment_ids, f"tags.`{HAS_MODELS_TAG}` = 'true'",
                                       ALL, 1000, None, token)
        for run in page:
            for model_id, record in _records(run).items():
                model = model_json(run, model_id, record)
                if matches(model["info"], model["data"]):
                    found.append(model)
        token = page.token
        if not token:
            break
    found.sort(key=lambda m: (-m["info"]["creation_timestamp_ms"], m["info"]["model_id"]))
    start = int(p.text("page_token", "0")) if p.text("page_token", "0").isdigit() else 0
    size = p.integer("max_results", 100)
    answer: dict[str, Any] = {"models": found[start:start + size]}
    if start + size < len(found):
        answer["next_page_token"] = str(start + size)
    return answer


def model_of(state: ServerState, model_id: str) -> tuple[Run, str]:
    """The run holding a logged model and the model's path in its artifacts."""
    try:
        run, record = _load(state, model_id)
    except MlflowError as e:
        raise NotFoundError(str(e)) from None
    return run, str(record["path"])


ROUTES = [
    ("POST", "/logged-models", create),
    ("POST", "/logged-models/search", search),
    ("GET", "/logged-models/{model_id}", get),
    ("PATCH", "/logged-models/{model_id}", finalize),
    ("DELETE", "/logged-models/{model_id}", delete),
    ("PATCH", "/logged-models/{model_id}/tags", set_tags),
    ("DELETE", "/logged-models/{model_id}/tags/{tag_key}", delete_tag),
    ("POST", "/logged-models/{model_id}/params", log_params),
    ("POST", "/runs/outputs", log_outputs),
]
