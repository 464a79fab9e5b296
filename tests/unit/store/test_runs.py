"""MetadataStore conformance, experiments and runs: the same tests on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import re

import pytest

from cairn.errors import ConflictError, NotFoundError, UserError
from cairn.store.base import ALL, DELETED_ONLY, MetadataStore
from cairn.store.entities import Artifact, Metric, Param, RunTag


def new_run(store: MetadataStore, experiment: str = "0", **kwargs: object) -> str:
    return store.create_run(experiment, "ana", 1000, **kwargs).info.run_id  # type: ignore[arg-type]


# -- experiments ----------------------------------------------------------------------

def test_default_experiment_exists_and_new_ones_count_from_one(store: MetadataStore) -> None:
    default = store.get_experiment("0")
    assert (default.name, default.lifecycle_stage) == ("Default", "active")
    assert store.create_experiment("fraud", tags={"team": "risk"}) == "1"
    fraud = store.get_experiment_by_name("fraud")
    assert fraud is not None and fraud.experiment_id == "1"
    assert fraud.tags == {"team": "risk"}
    assert store.get_experiment_by_name("nope") is None


def test_experiment_errors(store: MetadataStore) -> None:
    store.create_experiment("fraud")
    with pytest.raises(ConflictError, match="experiment 'fraud' already exists"):
        store.create_experiment("fraud")
    with pytest.raises(NotFoundError, match="experiment '42' does not exist"):
        store.get_experiment("42")
    with pytest.raises(NotFoundError, match="experiment 'abc' does not exist"):
        store.get_experiment("abc")
    with pytest.raises(UserError, match="experiment name"):
        store.create_experiment("  ")
    with pytest.raises(ConflictError, match="Default experiment"):
        store.delete_experiment("0")


def test_experiment_delete_restore_search_and_tags(store: MetadataStore) -> None:
    a, b = store.create_experiment("a"), store.create_experiment("b")
    store.delete_experiment(a)
    assert [e.name for e in store.search_experiments()] == ["Default", "b"]
    assert [e.name for e in store.search_experiments(DELETED_ONLY)] == ["a"]
    assert len(store.search_experiments(ALL)) == 3
    with pytest.raises(ConflictError, match="deleted"):
        store.create_run(a, "ana", 1)
    store.restore_experiment(a)
    store.set_experiment_tag(b, "team", "risk")
    found = store.search_experiments(filter_string="tags.team = 'risk' OR name LIKE 'De%'",
                                     order_by=["name DESC"])
    assert [e.name for e in found] == ["b", "Default"]
    assert store.get_experiment(b).tags == {"team": "risk"}


# -- runs -----------------------------------------------------------------------------

def test_create_and_get_run(store: MetadataStore) -> None:
    run = store.create_run("0", "ana", 1234, tags=[RunTag("team", "risk")])
    assert re.fullmatch(r"[0-9a-f]{32}", run.info.run_id)
    assert re.fullmatch(r"[a-z]+-[a-z]+-\d{3}", run.info.run_name)
    assert (run.info.status, run.info.start_time, run.info.end_time) == ("RUNNING", 1234, None)
    assert run.info.artifact_uri == f"runs:/{run.info.run_id}"
    assert store.get_run(run.info.run_id).data.tags == {"team": "risk"}
    named = store.create_run("0", "ana", 1, run_name="baseline")
    assert named.info.run_name == "baseline"


def test_unknown_run_is_not_found_everywhere(store: MetadataStore) -> None:
    for call in (lambda: store.get_run("f" * 32), lambda: store.log_batch("f" * 32),
                 lambda: store.delete_run("f" * 32),
                 lambda: store.get_metric_history("f" * 32, "x"),
                 lambda: store.list_artifacts("f" * 32)):
        with pytest.raises(NotFoundError, match=f"run '{'f' * 32}' does not exist"):
            call()
    with pytest.raises(NotFoundError, match="experiment '9' does not exist"):
        store.create_run("9", "ana", 1)


def test_log_batch_keeps_history_and_latest(store: MetadataStore) -> None:
    run_id = new_run(store)
    store.log_batch(run_id, metrics=[Metric("loss", 0.9, 10, 0), Metric("loss", 0.5, 20, 1),
                                     Metric("loss", 0.7, 15, 1), Metric("acc", 0.8, 10, 0)],
                    params=[Param("lr", "0.01")], tags=[RunTag("t", "1")])
    store.log_batch(run_id, metrics=[Metric("loss", 0.4, 30, 2), Metric("acc", 0.1, 5, 0)])
    data = store.get_run(run_id).data
    # latest = greatest (step, timestamp), not the last written
    assert data.metrics == {"loss": 0.4, "acc": 0.8}
    assert data.params == {"lr": "0.01"}
    history = store.get_metric_history(run_id, "loss")
    assert [(m.step, m.timestamp, m.value) for m in history] == [
        (0, 10, 0.9), (1, 15, 0.7), (1, 20, 0.5), (2, 30, 0.4)]


def test_nan_and_infinite_metrics_round_trip(store: MetadataStore) -> None:
    run_id = new_run(store)
    store.log_batch(run_id, metrics=[Metric("a", math.nan, 1, 0), Metric("b", math.inf, 1, 0),
                                     Metric("c", -math.inf, 1, 0)])
    metrics = store.get_run(run_id).data.metrics
    assert math.isnan(metrics["a"]) and metrics["b"] == math.inf and metrics["c"] == -math.inf
    assert math.isnan(store.get_metric_history(run_id, "a")[0].value)


def test_params_are_write_once(store: MetadataStore) -> None:
    run_id = new_run(store)
    store.log_batch(run_id, params=[Param("lr", "0.01")])
    store.log_batch(run_id, params=[Param("lr", "0.01")])  # the same value again is fine
    with pytest.raises(ConflictError, match=r"param 'lr' .* already '0.01'.*write-once"):
        store.log_batch(run_id, params=[Param("lr", "0.02")], metrics=[Metric("m", 1, 1, 0)])
    assert store.get_run(run_id).data.metrics == {}  # the failed batch wrote nothing
    with pytest.raises(ConflictError, match="twice in one batch"):
        store.log_batch(run_id, params=[Param("x", "1"), Param("x", "2")])


def test_bad_metric_values_are_user_errors(store: MetadataStore) -> None:
    run_id = new_run(store)
    with pytest.raises(UserError, match="invalid metric 'm'"):
        store.log_batch(run_id, metrics=[Metric("m", "high", 1, 0)])  # type: ignore[arg-type]
    with pytest.raises(UserError, match="invalid metric key"):
        store.log_batch(run_id, metrics=[Metric("", 1.0, 1, 0)])


def test_tags_overwrite_and_delete(store: MetadataStore) -> None:
    run_id = new_run(store)
    store.log_batch(run_id, tags=[RunTag("t", "1"), RunTag("u", "x")])
    store.log_batch(run_id, tags=[RunTag("t", "2")])
    assert store.get_run(run_id).data.tags == {"t": "2", "u": "x"}
    store.delete_tag(run_id, "u")
    assert store.get_run(run_id).data.tags == {"t": "2"}
    with pytest.raises(NotFoundError, match="no tag 'u'"):
        store.delete_tag(run_id, "u")


def test_update_run_info(store: MetadataStore) -> None:
    run_id = new_run(store)
    run = store.update_run_info(run_id, status="FINISHED", end_time=2000, run_name="final")
    assert (run.info.status, run.info.end_time, run.info.run_name) == ("FINISHED", 2000, "final")
    with pytest.raises(UserError, match="invalid run status 'DONE'.*FINISHED"):
        store.update_run_info(run_id, status="DONE")


def test_delete_and_restore_run(store: MetadataStore) -> None:
    run_id = new_run(store)
    store.delete_run(run_id)
    assert store.get_run(run_id).info.lifecycle_stage == "deleted"
    assert store.search_runs(["0"]) == []
    assert [r.info.run_id for r in store.search_runs(["0"], run_view_type=DELETED_ONLY)] == [
        run_id]
    with pytest.raises(ConflictError, match="is deleted; restore it"):
        store.log_batch(run_id, metrics=[Metric("m", 1, 1, 0)])
    store.restore_run(run_id)
    assert [r.info.run_id for r in store.search_runs(["0"])] == [run_id]


def test_a_run_behind_a_registered_version_cannot_be_deleted(store: MetadataStore) -> None:
    run_id = new_run(store)
    store.create_model_version("fraud", f"runs:/{run_id}/model", "d1", run_id=run_id)
    with pytest.raises(ConflictError, match="model 'fraud' version 1"):
        store.delete_run(run_id)
    assert store.get_run(run_id).info.lifecycle_stage == "active"


def test_artifacts(store: MetadataStore) -> None:
    run_id = new_run(store)
    store.log_artifacts(run_id, [Artifact(run_id, "model", "m0", 30, True),
                                 Artifact(run_id, "model/model.skops", "m1", 20),
                                 Artifact(run_id, "model_card.md", "c1", 10)])
    store.log_artifacts(run_id, [Artifact(run_id, "model_card.md", "c2", 11)])  # replaces
    assert [(a.path, a.digest) for a in store.list_artifacts(run_id)] == [
        ("model", "m0"), ("model/model.skops", "m1"), ("model_card.md", "c2")]
    assert [a.path for a in store.list_artifacts(run_id, "model")] == [
        "model", "model/model.skops"]
    assert store.list_artifacts(run_id, "mod") == []
    for bad in ("../x", "/etc/passwd", ""):
        with pytest.raises(UserError, match="invalid artifact path"):
            store.log_artifacts(run_id, [Artifact(run_id, bad, "d", 1)])


def test_replacing_a_directory_of_artifacts_is_one_step(store: MetadataStore) -> None:
    """What deleting an artifact does to its directory: the records below go and the
    rewritten directory comes, together; prefixes are path components, not strings."""
    run_id = new_run(store)
    store.log_artifacts(run_id, [Artifact(run_id, "model", "m0", 30, True),
                                 Artifact(run_id, "model/a.bin", "a", 10),
                                 Artifact(run_id, "model/b.bin", "b", 20),
                                 Artifact(run_id, "model_card.md", "c", 5)])
    removed = store.replace_artifacts(run_id, "model", [Artifact(run_id, "model", "m1", 20, True),
                                                        Artifact(run_id, "model/b.bin", "b", 20)])
    assert removed == 3
    assert [(a.path, a.digest) for a in store.list_artifacts(run_id)] == [
        ("model", "m1"), ("model/b.bin", "b"), ("model_card.md", "c")]
    assert store.replace_artifacts(run_id, "model_card.md", []) == 1
    with pytest.raises(NotFoundError):
        store.replace_artifacts(run_id, "model_card.md", [])
    with pytest.raises(UserError, match="not inside"):
        store.replace_artifacts(run_id, "model", [Artifact(run_id, "elsewhere", "x", 1)])
    assert [a.path for a in store.list_artifacts(run_id)] == ["model", "model/b.bin"]


def test_referenced_digests(store: MetadataStore) -> None:
    kept, dropped = new_run(store), new_run(store)
    store.log_artifacts(kept, [Artifact(kept, "a", "digest-a", 1)])
    store.log_artifacts(dropped, [Artifact(dropped, "b", "digest-b", 1)])
    store.create_model_version("m", "/some/path", "digest-model")
    store.delete_run(dropped)
    assert store.referenced_digests() == {"digest-a", "digest-model"}


def test_referenced_digests_as_if_runs_were_deleted(store: MetadataStore) -> None:
    """Retention's question before it deletes: what stays named without these runs. A
    digest another live run (or a version) also names stays."""
    old, shared, live = new_run(store), new_run(store), new_run(store)
    store.log_artifacts(old, [Artifact(old, "a", "digest-a", 1),
                              Artifact(old, "s", "digest-shared", 1)])
    store.log_artifacts(shared, [Artifact(shared, "s", "digest-shared", 1)])
    store.log_artifacts(live, [Artifact(live, "m", "digest-model", 1)])
    store.create_model_version("m", "/some/path", "digest-model")
    assert store.referenced_digests([old, shared]) == {"digest-model"}
    assert store.referenced_digests([old]) == {"digest-shared", "digest-model"}
    assert store.referenced_digests([old, live]) == {"digest-shared", "digest-model"}
    assert store.referenced_digests() == {"digest-a", "digest-shared", "digest-model"}


def test_referenced_digests_as_if_versions_were_not_registered(store: MetadataStore) -> None:
    """Tiering's question: what still names an Archived version's model when that version
    (and its run) are left out. Another version naming the same digest keeps it, and a
    version is named by model and number."""
    run = new_run(store)
    store.log_artifacts(run, [Artifact(run, "model", "digest-old", 1)])
    store.create_model_version("fraud", "/p", "digest-old", run)  # fraud v1
    store.create_model_version("fraud", "/p", "digest-new")  # fraud v2
    store.create_model_version("churn", "/p", "digest-shared")  # churn v1
    store.create_model_version("fraud", "/p", "digest-shared")  # fraud v3
    everything = {"digest-old", "digest-new", "digest-shared"}
    assert store.referenced_digests() == everything
    assert store.referenced_digests([run], [("fraud", 1)]) == {"digest-new", "digest-shared"}
    assert store.referenced_digests((), [("fraud", 1)]) == everything  # its run still names it
    assert store.referenced_digests((), [("fraud", 3)]) == everything  # churn v1 too
    assert store.referenced_digests((), [("churn", 1), ("fraud", 3)]) == {"digest-old",
                                                                          "digest-new"}
    assert store.referenced_digests((), [("churn", 3)]) == everything  # no such version


def test_digests_of_runs_deleted_or_not(store: MetadataStore) -> None:
    """Retention's candidates in one question, however many runs (past any bind limit)."""
    first, second = new_run(store), new_run(store)
    store.log_artifacts(first, [Artifact(first, "model", "digest-dir", 10, True),
                                Artifact(first, "model/w", "digest-w", 10),
                                Artifact(first, "s", "digest-shared", 1)])
    store.log_artifacts(second, [Artifact(second, "s", "digest-shared", 1)])
    store.delete_run(second)
    many = [f"no-such-run-{i}" for i in range(1200)]
    assert store.digests_of_runs([first, second, *many]) == {
        "digest-dir": True, "digest-w": False, "digest-shared": False}
    assert store.digests_of_runs([second]) == {"digest-shared": False}
    assert store.digests_of_runs([]) == {}


def test_delete_runs_at_once_but_those_a_version_keeps(store: MetadataStore) -> None:
    kept, *gone = [new_run(store) for _ in range(4)]
    store.create_model_version("m", f"runs:/{kept}/model", "digest", run_id=kept)
    assert store.delete_runs([kept, *gone]) == [kept]
    assert store.get_run(kept).info.lifecycle_stage == "active"
    assert {store.get_run(r).info.lifecycle_stage for r in gone} == {"deleted"}
    assert store.delete_runs(gone) == []  # deleting the deleted again is harmless
    fresh = new_run(store)
    with pytest.raises(NotFoundError):
        store.delete_runs([fresh, "no-such-run"])
    assert store.get_run(fresh).info.lifecycle_stage == "active"  # all or nothing
