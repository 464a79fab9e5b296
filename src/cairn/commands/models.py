"""The model registry verbs: list, show, versions, register, promote, alias, history,
lineage — what `cairn models …` does, and the server will, returning plain results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cairn.registry import history as audit_log
from cairn.registry.client import Client, version_number
from cairn.registry.lineage import model_lineage
from cairn.registry.stages import transition
from cairn.registry.uris import get_model, quote_string
from cairn.store.entities import AuditEntry, ModelVersion, RegisteredModel, StageChangeResult
from cairn.tracking import lineage
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
            reason: str = "") -> StageChangeResult:
    """Move a version to a stage; what the store's transaction did (previous stage,
    the versions it archived), so the report holds under concurrent promotions."""
    return transition(_backend().store, name, version_number(version), stage,
                      archive_existing=archive_existing, user_id=lineage.current_user(),
                      reason=reason)


def set_alias(*, name: str, alias: str, version: int | str) -> AliasChange:
    client = _client()
    client.set_registered_model_alias(name, alias, version)
    return AliasChange(name, alias, client.get_model_version_by_alias(name, alias).version)


def delete_alias(*, name: str, alias: str) -> AliasChange:
    _client().delete_registered_model_alias(name, alias)
    return AliasChange(name, alias, None)


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
