"""What `cairn models …` shows, as plain data, and the few registry steps it takes."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from cairn.registry.client import Client, version_number
from cairn.registry.uris import get_model, normalize_stage, quote_string
from cairn.store.entities import ModelVersion, RegisteredModel


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


@dataclass(frozen=True)
class Promotion:
    version: ModelVersion
    previous_stage: str
    archived: tuple[int, ...]


def promote(client: Client, name: str, version: int | str, stage: str,
            archive_existing: bool, reason: str) -> Promotion:
    number, target = version_number(version), normalize_stage(stage)
    before = client.get_model_version(name, number)
    holders = {mv.version for mv in versions_of(client, name, f"current_stage = '{target}'")}
    mv = client.transition_model_version_stage(name, number, target, archive_existing, reason)
    archived = tuple(sorted(holders - {number})) if archive_existing else ()
    return Promotion(mv, before.current_stage, archived)
