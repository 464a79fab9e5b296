"""MetadataStore conformance, the model registry: the same tests on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from cairn.errors import ConflictError, NotFoundError, UserError
from cairn.store.base import MetadataStore
from cairn.store.entities import StageChange


def register(store: MetadataStore, name: str = "fraud", n: int = 1,
             run_id: str | None = None) -> list[int]:
    return [store.create_model_version(name, f"/models/{name}/{i}", f"digest-{name}-{i}",
                                       run_id=run_id, user_id="ana").version for i in range(n)]


def test_versions_count_up_and_are_immutable_records(store: MetadataStore) -> None:
    run_id = store.create_run("0", "ana", 1).info.run_id
    v1 = store.create_model_version("fraud", f"runs:/{run_id}/model", "d1", run_id=run_id,
                                    tags={"k": "v"}, description="first", user_id="ana")
    assert (v1.name, v1.version, v1.current_stage, v1.digest, v1.run_id) == (
        "fraud", 1, "None", "d1", run_id)
    assert (v1.tags, v1.description, v1.user_id, v1.status) == ({"k": "v"}, "first", "ana",
                                                               "READY")
    assert register(store, n=2) == [2, 3]
    assert store.get_model_version("fraud", 1) == v1
    updated = store.update_model_version("fraud", 1, "better words")
    assert (updated.description, updated.digest, updated.source) == (
        "better words", "d1", f"runs:/{run_id}/model")


def test_version_numbers_are_never_reused(store: MetadataStore) -> None:
    register(store, n=3)
    store.delete_model_version("fraud", 3)
    assert register(store) == [4]
    with pytest.raises(NotFoundError, match="registered model 'fraud' has no version 3"):
        store.get_model_version("fraud", 3)


def test_registering_from_an_unknown_run_fails(store: MetadataStore) -> None:
    with pytest.raises(NotFoundError, match="run 'abc' does not exist"):
        store.create_model_version("fraud", "runs:/abc/model", "d", run_id="abc")
    with pytest.raises(NotFoundError):
        store.get_registered_model("fraud")  # nothing half-created


def test_registered_model_crud(store: MetadataStore) -> None:
    model = store.create_registered_model("fraud", tags={"team": "risk"}, description="d")
    assert (model.name, model.tags, model.description, model.latest_versions) == (
        "fraud", {"team": "risk"}, "d", ())
    with pytest.raises(ConflictError, match="registered model 'fraud' already exists"):
        store.create_registered_model("fraud")
    store.update_registered_model("fraud", "new")
    store.set_registered_model_tag("fraud", "owner", "ana")
    store.delete_registered_model_tag("fraud", "team")
    got = store.get_registered_model("fraud")
    assert (got.description, got.tags) == ("new", {"owner": "ana"})
    with pytest.raises(NotFoundError, match="no tag 'team'"):
        store.delete_registered_model_tag("fraud", "team")
    register(store, n=2)
    renamed = store.rename_registered_model("fraud", "fraud-v2")
    assert [v.version for v in store.search_model_versions("name = 'fraud-v2'")] == [2, 1]
    assert renamed.name == "fraud-v2"
    store.create_registered_model("other")
    with pytest.raises(ConflictError, match="a registered model with that name exists"):
        store.rename_registered_model("other", "fraud-v2")
    store.delete_registered_model("fraud-v2")
    with pytest.raises(NotFoundError, match="registered model 'fraud-v2' does not exist"):
        store.get_registered_model("fraud-v2")


def test_unknown_model_and_version_errors(store: MetadataStore) -> None:
    with pytest.raises(NotFoundError, match="registered model 'ghost' does not exist"):
        store.get_model_version("ghost", 1)
    with pytest.raises(NotFoundError, match="registered model 'ghost' does not exist"):
        store.get_latest_versions("ghost")
    register(store)
    with pytest.raises(NotFoundError, match="has no version 7"):
        store.apply_stage_change(StageChange("fraud", 7, "Staging"))
    with pytest.raises(UserError, match="invalid model version 'x'"):
        store.get_model_version("fraud", "x")  # type: ignore[arg-type]
    with pytest.raises(UserError, match="invalid model name"):
        store.create_model_version("a/b", "/p", "d")


def test_a_stage_change_returns_what_it_did(store: MetadataStore) -> None:
    register(store)
    done = store.apply_stage_change(StageChange("fraud", 1, "Staging", user_id="ana",
                                                reason="try it"))
    assert (done.version.current_stage, done.previous_stage, done.archived) == (
        "Staging", "None", ())
    assert done.version == store.get_model_version("fraud", 1)
    assert done.audit == store.get_audit_log("fraud", 1)[-1]
    assert (done.audit.action, done.audit.from_value, done.audit.to_value,
            done.audit.user_id, done.audit.reason) == (
        "transition", "None", "Staging", "ana", "try it")


def test_archive_others_leaves_one_holder(store: MetadataStore) -> None:
    register(store, n=3)
    store.apply_stage_change(StageChange("fraud", 1, "Production"))
    store.apply_stage_change(StageChange("fraud", 2, "Production"))  # two, without archiving
    done = store.apply_stage_change(StageChange(
        "fraud", 3, "Production", archive_others_to="Archived", user_id="bo",
        reason="better f1", archive_reason="archived: version 3 moved to Production",
        details={"gates": ["f1: ok"]}))
    assert (done.previous_stage, done.archived) == ("None", (1, 2))
    stages = {v.version: v.current_stage for v in store.search_model_versions()}
    assert stages == {1: "Archived", 2: "Archived", 3: "Production"}
    latest = store.get_latest_versions("fraud", ["Production", "Archived"])
    assert [(v.version, v.current_stage) for v in latest] == [(3, "Production"),
                                                              (2, "Archived")]
    history = store.get_audit_log("fraud", 3)
    assert [(e.action, e.from_value, e.to_value) for e in history] == [
        ("register", None, "None"), ("transition", "None", "Production")]
    assert (history[1].user_id, history[1].reason, history[1].details) == (
        "bo", "better f1", {"gates": ["f1: ok"]})
    assert done.audit == history[1]
    archived = store.get_audit_log("fraud", 1)[-1]
    assert (archived.from_value, archived.to_value, archived.user_id) == (
        "Production", "Archived", "bo")
    assert archived.reason == "archived: version 3 moved to Production"


def test_the_store_holds_no_stage_vocabulary(store: MetadataStore) -> None:
    """Stages are stored as the registry names them: its rules are not the store's."""
    register(store, n=2)
    store.apply_stage_change(StageChange("fraud", 1, "Shadow"))
    done = store.apply_stage_change(StageChange("fraud", 2, "Shadow",
                                                archive_others_to="Retired"))
    assert done.archived == (1,)
    assert store.get_model_version("fraud", 1).current_stage == "Retired"
    assert store.get_latest_versions("fraud", ["Live"]) == []


def test_get_latest_versions(store: MetadataStore) -> None:
    register(store, n=4)
    store.apply_stage_change(StageChange("fraud", 2, "Staging"))
    store.apply_stage_change(StageChange("fraud", 3, "Staging"))
    latest = store.get_latest_versions("fraud")
    assert [(v.version, v.current_stage) for v in latest] == [(4, "None"), (3, "Staging")]
    assert store.get_latest_versions("fraud", ["Production"]) == []
    asked = store.get_latest_versions("fraud", ["Staging", "None"])
    assert [(v.version, v.current_stage) for v in asked] == [(3, "Staging"), (4, "None")]
    model = store.get_registered_model("fraud")
    assert sorted(v.version for v in model.latest_versions) == [3, 4]


def test_aliases(store: MetadataStore) -> None:
    register(store, n=2)
    store.set_registered_model_alias("fraud", "champion", 1, user_id="ana")
    store.set_registered_model_alias("fraud", "champion", 2, user_id="bo")  # moves it
    store.set_registered_model_alias("fraud", "challenger", 1)
    assert store.get_model_version_by_alias("fraud", "champion").version == 2
    assert store.get_model_version("fraud", 1).aliases == ("challenger",)
    assert store.get_registered_model("fraud").aliases == {"champion": 2, "challenger": 1}
    store.delete_registered_model_alias("fraud", "challenger")
    with pytest.raises(NotFoundError, match="registered model 'fraud' has no alias "
                                            "'challenger'"):
        store.get_model_version_by_alias("fraud", "challenger")
    with pytest.raises(NotFoundError, match="no alias 'nope'"):
        store.delete_registered_model_alias("fraud", "nope")
    with pytest.raises(NotFoundError, match="has no version 9"):
        store.set_registered_model_alias("fraud", "x", 9)
    for reserved in ("latest", "v3", ""):
        with pytest.raises(UserError, match="invalid alias"):
            store.set_registered_model_alias("fraud", reserved, 1)
    moves = [(e.action, e.from_value, e.to_value, e.details) for e in store.get_audit_log("fraud")
             if e.action.endswith("alias")]
    assert moves == [("set_alias", None, "1", {"alias": "champion"}),
                     ("set_alias", "1", "2", {"alias": "champion"}),
                     ("set_alias", None, "1", {"alias": "challenger"}),
                     ("delete_alias", "1", None, {"alias": "challenger"})]


def test_deleting_a_version_drops_its_aliases_and_is_audited(store: MetadataStore) -> None:
    register(store, n=2)
    store.set_registered_model_alias("fraud", "champion", 2)
    store.delete_model_version("fraud", 2, user_id="ana")
    assert store.get_registered_model("fraud").aliases == {}
    last = store.get_audit_log("fraud")[-1]
    assert (last.action, last.version, last.user_id) == ("delete_version", 2, "ana")


def test_version_tags(store: MetadataStore) -> None:
    register(store)
    store.set_model_version_tag("fraud", 1, "validated", "yes")
    assert store.get_model_version("fraud", 1).tags == {"validated": "yes"}
    store.delete_model_version_tag("fraud", 1, "validated")
    assert store.get_model_version("fraud", 1).tags == {}
    with pytest.raises(NotFoundError, match="version 1 has no tag 'validated'"):
        store.delete_model_version_tag("fraud", 1, "validated")


def test_every_read_of_a_version_carries_exactly_its_tags_and_aliases(
        store: MetadataStore) -> None:
    register(store, n=3)
    register(store, "other", n=1)  # same version numbers in another model: never mixed in
    store.set_model_version_tag("other", 1, "team", "b")
    store.set_registered_model_alias("other", "best", 1)
    store.set_model_version_tag("fraud", 2, "team", "a")
    store.set_model_version_tag("fraud", 2, "note", "O'Brien \"quoted\", ünïcode")
    for alias in ("zeta", "alpha", "mid"):
        store.set_registered_model_alias("fraud", alias, 2)
    store.apply_stage_change(StageChange("fraud", 2, "Production"))
    tags = {"team": "a", "note": "O'Brien \"quoted\", ünïcode"}
    reads = [store.get_model_version("fraud", 2), store.get_model_version_by_alias("fraud", "mid"),
             next(v for v in store.get_latest_versions("fraud") if v.version == 2),
             store.get_latest_versions("fraud", ["Production"])[0]]
    for read in reads:
        assert (read.version, read.tags, read.aliases) == (2, tags, ("alpha", "mid", "zeta"))
    bare = store.get_model_version("fraud", 3)  # nothing attached: empty, not None
    assert (bare.tags, bare.aliases) == ({}, ())
    store.create_registered_model("empty")
    assert store.get_latest_versions("empty") == []
    with pytest.raises(NotFoundError, match="registered model 'nope' does not exist"):
        store.get_latest_versions("nope")
    with pytest.raises(NotFoundError, match="registered model 'nope' does not exist"):
        store.get_model_version_by_alias("nope", "mid")


def test_audit_log_of_unknown_model(store: MetadataStore) -> None:
    with pytest.raises(NotFoundError, match="registered model 'ghost' does not exist"):
        store.get_audit_log("ghost")


def test_a_new_model_never_inherits_a_deleted_ones_history(store: MetadataStore) -> None:
    """SQLite reused a deleted newest model's id: the next model then showed its audit
    log, and would have taken its gate policy, permissions and webhooks."""
    store.create_model_version("old", "/m", "d1", user_id="bob")
    store.set_gate_policy("old", "Staging: []\n", {"stages": {}}, "bob")
    store.delete_registered_model("old", "bob")
    store.create_registered_model("new", user_id="carol")
    assert [e.action for e in store.get_audit_log("new")] == []
    assert store.get_gate_policy("new") is None
    assert store.get_permissions("new") == {"carol": "MANAGE"}
    assert [e.action for e in store.get_audit_log("old")][-1] == "delete_model"


def test_stage_holders_are_the_versions_in_a_stage(store: MetadataStore) -> None:
    from cairn.registry.stages import plan

    for i in range(3):
        store.create_model_version("m", f"/m{i}", f"d{i}")
    for version in (3, 1):
        store.apply_stage_change(plan("m", version, "Production"))
    assert store.get_stage_holders("m", "Production") == (1, 3)
    assert store.get_stage_holders("m", "Staging") == ()


def test_numbers_beyond_what_the_database_holds_are_user_errors(store: MetadataStore) -> None:
    """A version or request number past 64 bits is bad input (400 on a server), not a
    database failure (found by fuzzing the API)."""
    store.create_registered_model("fraud")
    with pytest.raises(UserError):
        store.get_model_version("fraud", 2 ** 70)
    with pytest.raises(UserError):
        store.get_promotion_request(2 ** 70)
