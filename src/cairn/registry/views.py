"""What `cairn models …` shows, as plain data, and the few registry steps it takes."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from cairn.registry.client import Client, version_number
from cairn.registry.stages import transition
from cairn.registry.uris import get_model, quote_string
from cairn.store.entities import ModelVersion, RegisteredModel, StageChangeResult
from cairn.tracking import lineage


def model_dict(model: RegisteredModel) -> dict[str, Any]:
    out = asdict(model)
    out["latest_versions"] = [version_dict(mv) for mv in model.latest_versions]
    return out


def version_dict(mv: ModelVersion) -> dict[str, Any]:
    out = asdict(mv)
    out["aliases"] = list(mv.aliases)
    return out


def stages_held(model: RegisteredModel) -> str:
    held = [f"{mv.current_stage}: v{mv.version}" for mv in model.latest_versions
            if mv.current_stage != "None"]
    return ", ".join(held) or "-"


def versions_of(client: Client, name: str, filter_string: str = "") -> list[ModelVersion]:
    """Every version of `name` (narrowed by a filter), newest first."""
    get_model(client.store, name)
    # The user's filter alone, so a syntax error points into what they typed.
    where = filter_string or f"name = '{quote_string(name)}'"
    found = [mv for mv in client.search_model_versions(where) if mv.name == name]
    return sorted(found, key=lambda mv: mv.version, reverse=True)


def promote(client: Client, name: str, version: int | str, stage: str,
            archive_existing: bool, reason: str) -> StageChangeResult:
    return transition(client.store, name, version_number(version), stage,
                      archive_existing=archive_existing, user_id=lineage.current_user(),
                      reason=reason)
