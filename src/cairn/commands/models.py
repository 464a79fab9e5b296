"""The model registry verbs: list, show, versions, register, promote, alias, history,
lineage, gates, requests, permissions — what `cairn models …` does, and the server will,
returning plain results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cairn.identity import current_user
from cairn.registry import history as audit_log
from cairn.registry import permissions as access
from cairn.registry import promotion
from cairn.registry.client import Client, version_number
from cairn.registry.gates import GateResult
from cairn.registry.lineage import model_lineage
from cairn.registry.uris import get_model, quote_string
from cairn.store.entities import (
    AuditEntry,
    DecisionResult,
    GatePolicy,
    ModelVersion,
    PromotionRequest,
    RegisteredModel,
)
from cairn.tracking.backend import Backend, backend


def _backend() -> Backend:
    """Which store the models verbs act on: the current tracking URI's, as for runs."""
    return backend()


def _client() -> Client:
    return Client(_backend().uri)


@dataclass(frozen=True)
class ModelDetails:
    model: RegisteredModel
    versions: list[ModelVersion]  # newest first


@dataclass(frozen=True)
class AliasChange:
    name: str
    alias: str
    version: int | None  # where it points now; None once deleted


def list_models(*, filter_string: str = "") -> list[RegisteredModel]:
    return list(_client().search_registered_models(filter_string, max_results=1000))


def show(*, name: str) -> ModelDetails:
    client = _client()
    return ModelDetails(client.get_registered_model(name), _versions_of(client, name))


def versions(*, name: str, filter_string: str = "") -> list[ModelVersion]:
    return _versions_of(_client(), name, filter_string)


def _versions_of(client: Client, name: str, filter_string: str = "") -> list[ModelVersion]:
    """Every version of `name` (narrowed by a filter), newest first."""
    get_model(client.store, name)
    # The user's filter alone, so a syntax error points into what they typed.
    where = filter_string or f"name = '{quote_string(name)}'"
    found = [mv for mv in client.search_model_versions(where) if mv.name == name]
    return sorted(found, key=lambda mv: mv.version, reverse=True)


def register(*, source: str, name: str, tags: dict[str, str] | None = None,
             description: str = "") -> ModelVersion:
    return _client().create_model_version(name, source, tags=tags, description=description)


def promote(*, name: str, version: int | str, stage: str, archive_existing: bool = False,
            reason: str = "", request: bool = False, force: bool = False
            ) -> promotion.Promotion:
    """Move a version to a stage through its gates, or open a request; what the store's
    transaction did (previous stage, the versions it archived), so the report holds
    under concurrent promotions. GateRefused carries every verdict."""
    return promotion.promote(_backend(), name, version_number(version), stage,
                             archive_existing=archive_existing, reason=reason,
                             request=request, force=force)


def set_alias(*, name: str, alias: str, version: int | str, request: bool = False,
              force: bool = False, reason: str = "") -> promotion.Promotion:
    return promotion.move_alias(_backend(), name, alias, version_number(version),
                                reason=reason, request=request, force=force)


def delete_alias(*, name: str, alias: str) -> AliasChange:
    promotion.delete_alias(_backend(), name, alias)
    return AliasChange(name, alias, None)


def set_gates(*, name: str, text: str, path: str) -> GatePolicy:
    """Validate and store a gate policy (a new policy version; MANAGE only)."""
    return promotion.set_policy(_backend().store, name, text, path)


def gates(*, name: str, version: int | None = None) -> GatePolicy | None:
    """The policy in force, or policy version `version`."""
    store = _backend().store
    get_model(store, name)
    return store.get_gate_policy(name, version)


def check_gates(*, name: str, version: int | str, target: str) -> GateResult:
    """The gates' verdict on `version` entering `target` (a stage, or @alias)."""
    return promotion.check(_backend(), name, version_number(version), target)


def should_promote(*, run_id: str, name: str, stage: str = "Production") -> GateResult:
    """The gates' verdict on run `run_id`'s model entering `stage`, without promoting."""
    return promotion.should_promote(_backend(), run_id, name, stage)


def requests(*, name: str | None = None, state: str | None = None) -> list[PromotionRequest]:
    return promotion.requests(_backend().store, name, state)


def approve(*, request_id: int, comment: str = "") -> DecisionResult:
    return promotion.approve(_backend(), request_id, comment=comment)


def reject(*, request_id: int, comment: str) -> DecisionResult:
    return promotion.reject(_backend(), request_id, comment=comment)


@dataclass(frozen=True)
class Permissions:
    name: str
    grants: dict[str, str]  # user ("*": everyone else) → level
    you: str
    your_level: str


def permissions(*, name: str) -> Permissions:
    store = _backend().store
    me = current_user()
    return Permissions(name, store.get_permissions(name), me, access.level_of(store, name, me))


def set_permission(*, name: str, user: str, level: str | None) -> Permissions:
    _client().set_permission(name, user, level)
    return permissions(name=name)


def history(*, name: str) -> list[AuditEntry]:
    """Every change to model `name`, oldest first."""
    return audit_log.history(_backend().store, name)


def holders(*, name: str, stage: str = "Production", at: str = "now") -> audit_log.StageHolders:
    """Which versions held `stage` at moment `at` (a date or date-time, or "now")."""
    return audit_log.holders_at(_backend().store, name, stage, audit_log.parse_moment(at))


def lineage_of(*, uri: str) -> dict[str, Any]:
    """The chain behind a model: git commit, data, params, run, metrics, transitions."""
    b = _backend()
    return model_lineage(b.store, b.odb, uri, b.root)


def flat_params(chain: dict[str, Any]) -> dict[str, Any]:
    """The params file of a lineage chain as dotted keys ({"train.lr": 0.1})."""
    from cairn.pipeline.compare import flatten

    return flatten(chain["params_file"] or {})
