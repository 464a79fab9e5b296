"""The stage vocabulary and the one promotion path, on every store."""

from __future__ import annotations

import pytest

import cairn
from cairn.errors import NotFoundError, UserError
from cairn.registry.promotion import promote
from cairn.registry.stages import canonical, check_filter, plan
from cairn.store.base import MetadataStore
from cairn.store.entities import StageChange, StageChangeResult
from cairn.tracking.backend import backend


def transition(name: str, version: int, stage: str, **options: object) -> StageChangeResult:
    done = promote(backend(), name, version, stage, **options)  # type: ignore[arg-type]
    assert done.moved is not None
    return done.moved


def register(store: MetadataStore, n: int) -> None:
    for i in range(n):
        store.create_model_version("fraud", f"/models/{i}", f"digest-{i}")


def test_stages_are_case_insensitive_and_checked() -> None:
    assert canonical("archived") == "Archived"
    assert canonical("none") == "None"
    with pytest.raises(UserError, match="unknown stage 'Prod'; stages are None, Staging, "
                                        "Production, Archived"):
        canonical("Prod")


def test_a_promotion_is_planned_then_applied() -> None:
    """The plan is what gates will see; the store applies it unchanged."""
    assert plan("fraud", 3, "production", archive_existing=True, user_id="bo",
                reason="better f1") == StageChange(
        "fraud", 3, "Production", "Archived", "bo", "better f1",
        "archived: version 3 moved to Production")
    assert plan("fraud", 3, "staging").archive_others_to is None


def test_transition_validates_the_stage(tracking: str) -> None:
    register(backend().store, 1)
    with pytest.raises(UserError, match="unknown stage 'Prod'; stages are None, Staging, "
                                        "Production, Archived"):
        transition("fraud", 1, "Prod")
    assert transition("fraud", 1, "production").version.current_stage == "Production"
    with pytest.raises(UserError, match="Staging or Production"):
        transition("fraud", 1, "Archived", archive_existing=True)
    with pytest.raises(NotFoundError, match="has no version 7; its versions: 1"):
        transition("fraud", 7, "Staging")


def test_transition_reports_what_its_transaction_did(tracking: str) -> None:
    store = backend().store
    register(store, 3)
    transition("fraud", 1, "Production")
    transition("fraud", 2, "Production")
    done = transition("fraud", 3, "Production", archive_existing=True, user="bo",
                      reason="better f1")
    assert (done.version.version, done.previous_stage, done.archived) == (3, "None", (1, 2))
    assert (done.audit.user_id, done.audit.reason) == ("bo", "better f1")
    archived = store.get_audit_log("fraud", 1)[-1]
    assert (archived.from_value, archived.to_value) == ("Production", "Archived")
    assert "version 3 moved to Production" in archived.reason


def test_unknown_stages_are_refused_wherever_a_stage_is_named(tracking: str) -> None:
    client = cairn.Client()
    client.store.create_model_version("fraud", "/m", "d")
    with pytest.raises(UserError, match="unknown stage 'Live'"):
        client.get_latest_versions("fraud", ["Live"])
    with pytest.raises(UserError, match="unknown stage 'Live'"):
        client.search_model_versions("name = 'fraud' AND (stage = 'Live' OR version = 1)")
    with pytest.raises(UserError, match="unknown stage 'Live'"):
        check_filter("current_stage IN ('Staging', 'Live')")
    check_filter("current_stage LIKE 'Prod%'")  # a pattern, not a stage name
    assert [v.version for v in client.search_model_versions("stage = 'none'")] == [1]
