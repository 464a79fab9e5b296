"""The registry through cairn.Client, on every store: MLflow's names and behaviour, and
the audit row that names who made each change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import cairn
from cairn.errors import NotFoundError, UserError
from cairn.identity import current_user


def logged_model(fitted: tuple[Any, Any], **params: Any) -> tuple[str, str]:
    """A run with params, metrics and a logged model; (run id, its runs:/ URI)."""
    model, features = fitted
    with cairn.start_run() as run:
        cairn.log_params(params or {"lr": 0.01})
        cairn.log_metrics({"accuracy": 0.94, "f1": 0.91})
        info = cairn.sklearn.log_model(model, "model", input_example=features[:5])
    return run.info.run_id, info.model_uri


def test_register_names_the_logged_digest_and_counts_up(tracking: str,
                                                        fitted: tuple[Any, Any]) -> None:
    run_id, uri = logged_model(fitted)
    first = cairn.register_model(uri, "fraud-detector")
    second = cairn.register_model(uri, "fraud-detector", tags={"owner": "risk"})
    assert (first.version, second.version) == (1, 2)
    client = cairn.Client()
    (artifact,) = [a for a in client.list_artifacts(run_id) if a.path == "model"]
    assert first.digest == second.digest == artifact.digest
    assert first.run_id == run_id and first.source == uri
    assert client.get_model_version("fraud-detector", "2").tags["owner"] == "risk"


def test_a_run_without_that_artifact_is_refused(tracking: str,
                                               fitted: tuple[Any, Any]) -> None:
    run_id, _ = logged_model(fitted)
    with pytest.raises(NotFoundError, match=rf"run {run_id} has no artifact 'modle'.*model"):
        cairn.register_model(f"runs:/{run_id}/modle", "m")


def test_archive_existing_leaves_one_production_version(tracking: str,
                                                        fitted: tuple[Any, Any]) -> None:
    _, uri = logged_model(fitted)
    client = cairn.Client()
    for _ in range(3):
        cairn.register_model(uri, "m")
    client.transition_model_version_stage("m", 1, "Production")
    client.transition_model_version_stage("m", "2", "production")
    held = client.search_model_versions("name = 'm' AND current_stage = 'Production'")
    assert sorted(v.version for v in held) == [1, 2]  # without archive both hold it
    client.transition_model_version_stage("m", 3, "Production", archive_existing_versions=True)
    stages = {v.version: v.current_stage for v in client.search_model_versions("name = 'm'")}
    assert stages == {1: "Archived", 2: "Archived", 3: "Production"}
    assert [v.version for v in client.get_latest_versions("m", stages=["Production"])] == [3]


def test_aliases(tracking: str, fitted: tuple[Any, Any]) -> None:
    _, uri = logged_model(fitted)
    client = cairn.Client()
    cairn.register_model(uri, "m")
    cairn.register_model(uri, "m")
    client.set_registered_model_alias("m", "champion", 1)
    assert client.get_model_version_by_alias("m", "champion").version == 1
    client.set_registered_model_alias("m", "champion", "2")
    assert client.get_model_version_by_alias("m", "champion").version == 2
    with pytest.raises(NotFoundError, match="has no alias 'chmpion'; its aliases: champion"):
        client.get_model_version_by_alias("m", "chmpion")
    client.delete_registered_model_alias("m", "champion")
    with pytest.raises(NotFoundError, match="its aliases: none"):
        client.get_model_version_by_alias("m", "champion")


def test_unknown_names_say_what_exists(tracking: str, fitted: tuple[Any, Any]) -> None:
    _, uri = logged_model(fitted)
    client = cairn.Client()
    cairn.register_model(uri, "fraud-detector")
    with pytest.raises(NotFoundError, match="no registered model 'fraud'; registered models: "
                                            "fraud-detector"):
        client.get_registered_model("fraud")
    with pytest.raises(NotFoundError, match="has no version 7; its versions: 1"):
        client.get_model_version("fraud-detector", 7)
    with pytest.raises(UserError, match="'seven' is not a number"):
        client.get_model_version("fraud-detector", "seven")
    with pytest.raises(UserError, match="unknown stage 'Prod'"):
        client.transition_model_version_stage("fraud-detector", 1, "Prod")
    with pytest.raises(NotFoundError, match="no registered model 'nope'"):
        client.get_latest_versions("nope")


def test_register_a_local_directory_records_workspace_lineage(tracking: str,
                                                            tmp_path: Path) -> None:
    model_dir = tmp_path / "exported"
    model_dir.mkdir()
    (model_dir / "weights.bin").write_bytes(b"w" * 10)
    mv = cairn.register_model(str(model_dir), "local")
    assert mv.version == 1 and mv.run_id is None and mv.digest
    assert "cairn.python" in mv.tags  # lineage of the registering environment
    with pytest.raises(NotFoundError, match="no such file or directory"):
        cairn.register_model(str(tmp_path / "missing"), "local")
    with pytest.raises(UserError, match="model name"):
        cairn.register_model(str(model_dir), "bad/name")


def test_the_seed_articles_flows_run_as_written(tracking: str, fitted: tuple[Any, Any]) -> None:
    """The MLflow snippets of the seed article, with only the import changed."""
    model, _ = fitted
    mlflow = cairn
    mlflow.set_experiment("fraud")
    with mlflow.start_run() as run:
        mlflow.log_params({"lr": 0.01, "epochs": 50})
        mlflow.sklearn.log_model(model, "model")
        mlflow.log_metrics({"accuracy": 0.94, "f1": 0.91})
    result = mlflow.register_model(model_uri=f"runs:/{run.info.run_id}/model",
                                   name="fraud-detector")
    assert result.version == 1
    client = mlflow.MlflowClient()
    client.transition_model_version_stage(name="fraud-detector", version=1, stage="Production",
                                          archive_existing_versions=True)

    def should_promote(candidate_run_id: str, model_name: str) -> bool:
        candidate = client.get_run(candidate_run_id)
        candidate_f1 = float(candidate.data.metrics["f1"])
        prod_versions = client.get_latest_versions(model_name, stages=["Production"])
        if not prod_versions:
            return True
        prod_run = client.get_run(prod_versions[0].run_id)
        prod_f1 = float(prod_run.data.metrics["f1"])
        return candidate_f1 > prod_f1 + 0.005

    assert should_promote(run.info.run_id, "fraud-detector") is False
    with mlflow.start_run() as unregistered:
        mlflow.log_metric("f1", 0.99)
    assert should_promote(unregistered.info.run_id, "fraud-detector") is True

    experiment_id = run.info.experiment_id
    for r in client.search_runs(experiment_ids=[experiment_id]):
        if not client.search_model_versions(f"run_id='{r.info.run_id}'"):
            client.delete_run(r.info.run_id)
    left = [r.info.run_id for r in client.search_runs(experiment_ids=[experiment_id])]
    assert left == [run.info.run_id]  # the registered run survives the cleanup loop


def a_version() -> None:
    with open("model.txt", "w") as f:
        f.write("weights")
    cairn.register_model("model.txt", "m")


def test_update_model_version_without_a_description_keeps_it(tracking: str) -> None:
    """MLflow refuses an update with nothing to change; it must not erase the text."""
    a_version()
    client = cairn.Client()
    client.update_model_version("m", 1, description="trained on May data")
    with pytest.raises(UserError, match="nothing to update.*description="):
        client.update_model_version("m", 1)
    assert client.get_model_version("m", 1).description == "trained on May data"
    client.update_model_version("m", 1, description="")  # an explicit "" still clears it
    assert client.get_model_version("m", 1).description == ""


def test_the_audit_log_says_who_updated_a_description(tracking: str) -> None:
    a_version()
    client = cairn.Client()
    client.update_model_version("m", 1, description="better words")
    (update,) = [e for e in client.get_audit_log("m") if e.action == "update"]
    assert update.user_id == current_user() != ""


@pytest.mark.not_on_rest  # reads the audit table itself: the model is gone
def test_the_audit_log_says_who_renamed_and_deleted_a_model(tracking: str) -> None:
    from cairn.store.sql.tables import audit_log

    a_version()
    client = cairn.Client()
    client.rename_registered_model("m", "fraud")
    (rename,) = [e for e in client.get_audit_log("fraud") if e.action == "rename"]
    assert rename.user_id == current_user()
    client.delete_registered_model("fraud")
    store: Any = client.store
    with store._engine.connect() as conn:  # the model is gone; its log stays
        rows = conn.execute(audit_log.select().where(audit_log.c.action == "delete_model"))
        assert [r.user_id for r in rows] == [current_user()]
