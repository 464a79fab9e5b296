"""The model registry under /api/2.0/mlflow/ (registered-models/…, model-versions/…).

Every version names one directory digest, whatever the client sent as its source
(`runs:/<run>/<path>`, the run's `mlflow-artifacts:/…` location, or MLflow 3's
`models:/<model id>`); a path on the server's own disk is refused. Stage transitions and
alias moves go through `cairn.registry.promotion`, so permissions and gates apply to the
mlflow client exactly as to `cairn models promote`: a refusal is an error whose message
carries every verdict. get-download-uri names the version's tree by digest
(`mlflow-artifacts:/objects/<digest>`), which no later upload can change.
"""

from __future__ import annotations

import re
from typing import Any

from cairn.errors import ApprovalPending, ConflictError, NotFoundError
from cairn.identity import current_user
from cairn.registry import permissions, promotion, uris
from cairn.registry.client import version_number
from cairn.registry.registering import register
from cairn.registry.stages import STAGES, canonical, check_filter
from cairn.server.mlflow_compat import logged_models
from cairn.server.mlflow_compat.common import (
    ARTIFACTS_SCHEME,
    HIDDEN_TAG_PREFIX,
    Params,
    already_exists,
    backend,
    invalid,
    pairs,
)
from cairn.server.state import ServerState
from cairn.store.entities import ModelVersion, RegisteredModel

MODEL_ID_TAG = HIDDEN_TAG_PREFIX + "model_id"  # the logged model a version came from


def version_json(mv: ModelVersion) -> dict[str, Any]:
    found: dict[str, Any] = {
        "name": mv.name, "version": str(mv.version),
        "creation_timestamp": mv.creation_timestamp,
        "last_updated_timestamp": mv.last_updated_timestamp, "user_id": mv.user_id,
        "current_stage": mv.current_stage, "description": mv.description,
        "source": mv.source, "status": mv.status or "READY", "tags": pairs(mv.tags),
        "run_link": mv.run_link, "aliases": list(mv.aliases)}
    if mv.run_id:
        found["run_id"] = mv.run_id
    if MODEL_ID_TAG in mv.tags:
        found["model_id"] = mv.tags[MODEL_ID_TAG]
    return found


def model_json(m: RegisteredModel) -> dict[str, Any]:
    return {"name": m.name, "creation_timestamp": m.creation_timestamp,
            "last_updated_timestamp": m.last_updated_timestamp,
            "description": m.description, "tags": pairs(m.tags),
            "latest_versions": [version_json(v) for v in m.latest_versions],
            "aliases": [{"alias": a, "version": str(v)} for a, v in sorted(m.aliases.items())]}


def _version(p: Params) -> int:
    return version_number(p.text("version"))


def _paged(key: str, items: list[dict[str, Any]], token: str | None) -> dict[str, Any]:
    answer: dict[str, Any] = {key: items}
    if token:
        answer["next_page_token"] = token
    return answer


# -- registered models -------------------------------------------------------------------

def create_model(state: ServerState, p: Params) -> dict[str, Any]:
    name = p.text("name")
    try:
        created = state.store.create_registered_model(name, p.pairs("tags") or None,
                                                      p.text("description", ""),
                                                      current_user())
    except ConflictError:
        raise already_exists(f"registered model '{name}' already exists") from None
    return {"registered_model": model_json(created)}


def get_model(state: ServerState, p: Params) -> dict[str, Any]:
    return {"registered_model": model_json(uris.get_model(state.store, p.text("name")))}


# The 3.x client adds this clause to every model search to hide prompts (Cairn has none);
# a model without that tag must still match, as on MLflow's server.
_NOT_PROMPT = re.compile(r"\s*(AND\s+)?tags?\.`?mlflow\.prompt\.is_prompt`?\s*!=\s*'true'"
                         r"(\s+AND)?\s*", re.IGNORECASE)


def without_prompt_clause(filter_string: str) -> str:
    return _NOT_PROMPT.sub(" ", filter_string, count=1).strip()


def search_models(state: ServerState, p: Params) -> dict[str, Any]:
    page = state.store.search_registered_models(
        without_prompt_clause(p.text("filter", "")), p.integer("max_results", 100),
        [str(o) for o in p.items("order_by")] or None, p.opt("page_token"))
    return _paged("registered_models", [model_json(m) for m in page], page.token)


def rename_model(state: ServerState, p: Params) -> dict[str, Any]:
    renamed = state.store.rename_registered_model(p.text("name"), p.text("new_name"),
                                                  current_user())
    return {"registered_model": model_json(renamed)}


def update_model(state: ServerState, p: Params) -> dict[str, Any]:
    updated = state.store.update_registered_model(p.text("name"), p.text("description", ""))
    return {"registered_model": model_json(updated)}


def delete_model(state: ServerState, p: Params) -> dict[str, Any]:
    name, user = p.text("name"), current_user()
    permissions.require(state.store, name, user, "MANAGE", "deleting a model")
    state.store.delete_registered_model(name, user)
    return {}


def set_model_tag(state: ServerState, p: Params) -> dict[str, Any]:
    state.store.set_registered_model_tag(p.text("name"), p.text("key"), p.text("value", ""))
    return {}


def delete_model_tag(state: ServerState, p: Params) -> dict[str, Any]:
    state.store.delete_registered_model_tag(p.text("name"), p.text("key"))
    return {}


def latest_versions(state: ServerState, p: Params) -> dict[str, Any]:
    name = p.text("name")
    stages = [canonical(str(s)) for s in p.items("stages")] or list(STAGES)
    try:  # one transaction on the hot path; the registry's own message when it fails
        found = state.store.get_latest_versions(name, stages)
    except NotFoundError:
        uris.get_model(state.store, name)
        raise
    return {"model_versions": [version_json(v) for v in found]}


# -- aliases -----------------------------------------------------------------------------

def _pending(done: promotion.Promotion) -> ApprovalPending:
    request = done.request
    return ApprovalPending(
        f"model '{done.name}' version {done.version} passed its gates for {done.target}, "
        f"which also need {done.gates.approvals_required} approval(s): request "
        f"{getattr(request, 'id', '?')} is open (`cairn models approve "
        f"{getattr(request, 'id', '?')}`)", request)


def set_alias(state: ServerState, p: Params) -> dict[str, Any]:
    done = promotion.move_alias(backend(state), p.text("name"), p.text("alias"), _version(p))
    if done.alias is None:
        raise _pending(done)
    return {}


def delete_alias(state: ServerState, p: Params) -> dict[str, Any]:
    promotion.delete_alias(backend(state), p.text("name"), p.text("alias"))
    return {}


def get_by_alias(state: ServerState, p: Params) -> dict[str, Any]:
    name, alias = p.text("name"), p.text("alias")
    try:  # one transaction on the hot path; the registry's message (naming the aliases
        mv = state.store.get_model_version_by_alias(name, alias)  # there are) on a miss
    except NotFoundError:
        mv = uris.resolve_version(state.store, uris.ModelsUri(name, alias=alias))
    return {"model_version": version_json(mv)}


# -- model versions ----------------------------------------------------------------------

def cairn_source(state: ServerState, source: str, model_id: str | None) -> str:
    """The source as Cairn registers it: a runs:/ or models:/NAME/… URI."""
    from cairn.server.mlflow_compat.artifacts import RunPath, locate

    if source.startswith(uris.RUNS):
        return source
    if source.startswith(ARTIFACTS_SCHEME):
        where = locate(state, source[len(ARTIFACTS_SCHEME):])
        if not isinstance(where, RunPath) or not where.rel:
            raise invalid(f"source {source!r} names no artifact inside a run")
        return f"runs:/{where.run.info.run_id}/{where.rel}"
    if source.startswith(uris.MODELS):
        body = source[len(uris.MODELS):].strip("/")
        if "/" not in body and "@" not in body:  # models:/<logged model id>
            run, path = logged_models.model_of(state, body)
            return f"runs:/{run.info.run_id}/{path}"
        return source
    if model_id:
        run, path = logged_models.model_of(state, model_id)
        return f"runs:/{run.info.run_id}/{path}"
    raise invalid(f"source {source!r} is not one this server can register: give runs:/<run "
                  "id>/<path>, the run's mlflow-artifacts:/ location, or models:/<model id> "
                  "(a path on the server's disk is never read)")


def create_version(state: ServerState, p: Params) -> dict[str, Any]:
    name = p.text("name")
    model_id = p.opt("model_id")
    source = p.text("source", "")
    if not model_id and source.startswith(uris.MODELS):
        body = source[len(uris.MODELS):].strip("/")
        model_id = body if "/" not in body and "@" not in body else None
    tags = p.pairs("tags")
    if model_id:
        tags[MODEL_ID_TAG] = model_id
    created = register(backend(state), cairn_source(state, source, model_id), name, tags,
                       p.text("description", ""), p.opt("run_id"))
    return {"model_version": version_json(created)}


def get_version(state: ServerState, p: Params) -> dict[str, Any]:
    return {"model_version": version_json(uris.get_version(state.store, p.text("name"),
                                                           _version(p)))}


def search_versions(state: ServerState, p: Params) -> dict[str, Any]:
    filter_string = without_prompt_clause(p.text("filter", ""))
    check_filter(filter_string)
    page = state.store.search_model_versions(
        filter_string, p.integer("max_results", 10000),
        [str(o) for o in p.items("order_by")] or None, p.opt("page_token"))
    return _paged("model_versions", [version_json(v) for v in page], page.token)


def update_version(state: ServerState, p: Params) -> dict[str, Any]:
    updated = state.store.update_model_version(p.text("name"), _version(p),
                                               p.text("description", ""), current_user())
    return {"model_version": version_json(updated)}


def delete_version(state: ServerState, p: Params) -> dict[str, Any]:
    name, user = p.text("name"), current_user()
    permissions.require(state.store, name, user, "MANAGE", "deleting a version")
    state.store.delete_model_version(name, _version(p), user)
    return {}


def transition_stage(state: ServerState, p: Params) -> dict[str, Any]:
    done = promotion.promote(backend(state), p.text("name"), _version(p), p.text("stage"),
                             archive_existing=p.flag("archive_existing_versions"))
    if done.moved is None:
        raise _pending(done)
    return {"model_version": version_json(done.moved.version)}


def download_uri(state: ServerState, p: Params) -> dict[str, Any]:
    mv = uris.get_version(state.store, p.text("name"), _version(p))
    if not mv.digest:
        raise invalid(f"model '{mv.name}' version {mv.version} records no digest")
    return {"artifact_uri": f"{ARTIFACTS_SCHEME}objects/{mv.digest}"}


def set_version_tag(state: ServerState, p: Params) -> dict[str, Any]:
    state.store.set_model_version_tag(p.text("name"), _version(p), p.text("key"),
                                      p.text("value", ""))
    return {}


def delete_version_tag(state: ServerState, p: Params) -> dict[str, Any]:
    state.store.delete_model_version_tag(p.text("name"), _version(p), p.text("key"))
    return {}


ROUTES = [
    ("POST", "/registered-models/create", create_model),
    ("GET", "/registered-models/get", get_model),
    ("GET", "/registered-models/search", search_models),
    ("POST", "/registered-models/rename", rename_model),
    ("PATCH", "/registered-models/update", update_model),
    ("DELETE", "/registered-models/delete", delete_model),
    ("POST", "/registered-models/set-tag", set_model_tag),
    ("DELETE", "/registered-models/delete-tag", delete_model_tag),
    ("POST", "/registered-models/get-latest-versions", latest_versions),
    ("GET", "/registered-models/get-latest-versions", latest_versions),
    ("POST", "/registered-models/alias", set_alias),
    ("DELETE", "/registered-models/alias", delete_alias),
    ("GET", "/registered-models/alias", get_by_alias),
    ("POST", "/model-versions/create", create_version),
    ("GET", "/model-versions/get", get_version),
    ("GET", "/model-versions/search", search_versions),
    ("PATCH", "/model-versions/update", update_version),
    ("DELETE", "/model-versions/delete", delete_version),
    ("POST", "/model-versions/transition-stage", transition_stage),
    ("GET", "/model-versions/get-download-uri", download_uri),
    ("POST", "/model-versions/set-tag", set_version_tag),
    ("DELETE", "/model-versions/delete-tag", delete_version_tag),
]
