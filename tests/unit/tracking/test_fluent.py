"""The fluent tracking API as an MLflow user drives it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import cairn
from cairn.errors import ConflictError, IntegrityError, NotFoundError, UserError
from cairn.store.open import open_store
from cairn.tracking import fluent


def reopen(uri: str) -> cairn.Client:
    """A client on a fresh store connection: sees only what was committed."""
    from cairn.tracking.backend import forget_backends

    forget_backends()
    return cairn.Client(uri)


def test_a_run_records_params_metrics_tags_and_finishes(tracking: str) -> None:
    cairn.set_experiment("fraud")
    with cairn.start_run(run_name="baseline") as run:
        cairn.log_params({"lr": 0.01, "epochs": 50})
        cairn.log_param("seed", 7)
        cairn.log_metrics({"accuracy": 0.94, "f1": 0.91})
        for step in range(3):
            cairn.log_metric("loss", 1.0 / (step + 1), step=step)
        cairn.set_tags({"team": "risk"})
        cairn.set_tag("stage", "dev")
        assert cairn.active_run() is run
    assert cairn.active_run() is None
    got = reopen(tracking).get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.info.end_time
    assert got.info.run_name == "baseline"
    assert got.data.params == {"lr": "0.01", "epochs": "50", "seed": "7"}
    assert got.data.metrics == {"accuracy": 0.94, "f1": 0.91, "loss": pytest.approx(1 / 3)}
    assert got.data.tags["team"] == "risk" and got.data.tags["stage"] == "dev"
    history = cairn.Client(tracking).get_metric_history(run.info.run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    experiment = cairn.Client(tracking).get_experiment_by_name("fraud")
    assert experiment is not None and got.info.experiment_id == experiment.experiment_id


def test_an_exception_fails_the_run_and_propagates(tracking: str) -> None:
    with pytest.raises(RuntimeError), cairn.start_run() as run:
        cairn.log_metric("x", 1.0)
        raise RuntimeError("boom")
    got = reopen(tracking).get_run(run.info.run_id)
    assert got.info.status == "FAILED"
    assert got.data.metrics == {"x": 1.0}  # buffered rows are not lost on failure


def test_a_second_run_needs_nested(tracking: str) -> None:
    with cairn.start_run() as parent:
        with pytest.raises(UserError, match="already active.*nested=True"):
            cairn.start_run()
        with cairn.start_run(nested=True) as child:
            assert cairn.active_run() is child
        assert cairn.active_run() is parent
    tags = cairn.Client(tracking).get_run(child.info.run_id).data.tags
    assert tags["cairn.parentRunId"] == parent.info.run_id


def test_logging_without_a_run_starts_one(tracking: str) -> None:
    cairn.log_metric("auc", 0.5)
    run = cairn.active_run()
    assert run is not None
    cairn.end_run()
    got = reopen(tracking).get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.data.metrics == {"auc": 0.5}


def test_bad_values_are_refused_at_once(tracking: str) -> None:
    with cairn.start_run():
        with pytest.raises(UserError, match="metric 'acc' must be a number"):
            cairn.log_metric("acc", "high")  # type: ignore[arg-type]
        cairn.log_param("lr", 0.1)
        with pytest.raises(ConflictError):
            cairn.log_param("lr", 0.2)


def test_set_experiment_reuses_an_existing_one(tracking: str) -> None:
    first = cairn.set_experiment("exp")
    assert cairn.set_experiment("exp").experiment_id == first.experiment_id
    with pytest.raises(UserError, match="experiment_name or an experiment_id"):
        cairn.set_experiment()


def test_flush_makes_buffered_metrics_durable(tracking: str) -> None:
    with cairn.start_run() as run:
        cairn.log_metrics({"a": 1.0, "b": 2.0}, step=4)
        cairn.flush()
        other = open_store(tracking)  # another connection, as another process would be
        try:
            assert other.get_run(run.info.run_id).data.metrics == {"a": 1.0, "b": 2.0}
        finally:
            other.close()


def test_artifacts_are_objects_and_come_back_verified(tracking: str, tmp_path: Path) -> None:
    (tmp_path / "report.txt").write_text("hello")
    plots = tmp_path / "plots"
    (plots / "sub").mkdir(parents=True)
    (plots / "roc.svg").write_text("<svg/>")
    (plots / "sub" / "pr.svg").write_text("<svg>pr</svg>")
    with cairn.start_run() as run:
        cairn.log_artifact(tmp_path / "report.txt")
        cairn.log_artifact(tmp_path / "report.txt", artifact_path="docs")
        cairn.log_artifacts(plots, artifact_path="plots")
        cairn.log_dict({"lr": 0.1}, "cfg.json")
        cairn.log_dict({"lr": 0.1}, "conf/cfg.yaml")
    client = cairn.Client(tracking)
    run_id = run.info.run_id
    top = {a.path: a.is_dir for a in client.list_artifacts(run_id)}
    assert top == {"report.txt": False, "docs": True, "plots": True, "cfg.json": False,
                   "conf": True}
    assert [a.path for a in client.list_artifacts(run_id, "plots")] == ["plots/roc.svg",
                                                                        "plots/sub"]
    out = Path(client.download_artifacts(run_id, "plots", tmp_path / "dl"))
    assert (out / "sub" / "pr.svg").read_text() == "<svg>pr</svg>"
    cfg = Path(client.download_artifacts(run_id, "cfg.json", tmp_path / "dl2"))
    assert json.loads(cfg.read_text()) == {"lr": 0.1}
    yaml_file = Path(client.download_artifacts(run_id, "conf/cfg.yaml", tmp_path / "dl3"))
    assert yaml_file.read_text().strip() == "lr: 0.1"


def test_a_tampered_artifact_object_is_refused(tracking: str, tmp_path: Path) -> None:
    (tmp_path / "weights.bin").write_bytes(b"w" * 100)
    with cairn.start_run() as run:
        cairn.log_artifact(tmp_path / "weights.bin")
    client = cairn.Client(tracking)
    (artifact,) = client.list_artifacts(run.info.run_id)
    obj = Path(client._backend.odb.oid_to_path(artifact.digest))
    obj.chmod(0o644)
    obj.write_bytes(b"x" + b"w" * 99)
    with pytest.raises(IntegrityError, match="corrupt"):
        client.download_artifacts(run.info.run_id, "weights.bin", tmp_path / "out")
    assert not (tmp_path / "out" / "weights.bin").exists()


def test_artifact_paths_stay_inside_the_run(tracking: str, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    with cairn.start_run() as run:
        with pytest.raises(UserError, match="must stay inside"):
            cairn.log_artifact(tmp_path / "f.txt", artifact_path="../escape")
        with pytest.raises(NotFoundError, match="no such file"):
            cairn.log_artifact(tmp_path / "missing.txt")
    with pytest.raises(NotFoundError, match="has no artifact 'nope'"):
        cairn.Client(tracking).download_artifacts(run.info.run_id, "nope", tmp_path / "o")


def test_deleted_runs_are_hidden_then_restored(tracking: str) -> None:
    cairn.set_experiment("e")
    with cairn.start_run() as run:
        cairn.log_metric("m", 1.0)
    client = cairn.Client(tracking)
    experiment_id = run.info.experiment_id
    client.delete_run(run.info.run_id)
    assert client.search_runs([experiment_id]) == []
    client.restore_run(run.info.run_id)
    assert [r.info.run_id for r in client.search_runs(experiment_id)] == [run.info.run_id]


def test_a_directory_of_logged_files_downloads_whole(tracking: str, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("a")
    with cairn.start_run() as run:
        cairn.log_artifact(tmp_path / "a.txt", artifact_path="docs/v1")
        fluent.log_text("b", "docs/b.txt")
    out = Path(cairn.Client(tracking).download_artifacts(run.info.run_id, "docs", tmp_path / "o"))
    assert (out / "v1" / "a.txt").read_text() == "a" and (out / "b.txt").read_text() == "b"
