"""build_package on every store (SQLite, PostgreSQL, and through a server on either):
the same version gives the same bytes, the record and the lineage name the digest, and
the package loads and predicts as the version does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import cairn
from cairn.errors import UserError
from cairn.packaging.build import build_package
from cairn.packaging.load import load_package
from cairn.registry.lineage import model_lineage
from cairn.tracking.backend import backend


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, target = load_iris(return_X_y=True, as_frame=True)
    return LogisticRegression(max_iter=300).fit(features, target), features


def test_a_version_builds_the_same_package_twice_and_records_it(
        tracking: str, fitted: tuple[Any, Any], tmp_path: Path) -> None:
    model, features = fitted
    with cairn.start_run() as run:
        cairn.log_param("lr", 0.01)
        cairn.sklearn.log_model(model, "model", input_example=features[:5],
                                registered_model_name="fraud")
    cairn.Client().set_registered_model_alias("fraud", "champion", 1)
    first = build_package("models:/fraud@champion", tmp_path / "a")
    client = cairn.Client()
    client.transition_model_version_stage("fraud", 1, "Staging")  # the registry's state,
    client.set_terminated(run.info.run_id, "KILLED")  # the run's progress and its name:
    client.set_tag(run.info.run_id, "mlflow.runName", "renamed")  # not how it was made
    second = build_package("models:/fraud/Staging", tmp_path / "b")
    assert first.path.read_bytes() == second.path.read_bytes()
    assert first.record == second.record  # one record per digest
    assert first.manifest.model["run_id"] == run.info.run_id
    assert first.manifest.lineage["params"] == {"lr": "0.01"}
    assert "stage" not in first.manifest.lineage["model"]
    assert "transitions" not in first.manifest.lineage
    b = backend()
    assert [p.digest for p in b.store.list_packages("fraud", 1)] == [first.manifest.digest]
    chain = model_lineage(b.store, b.odb, "models:/fraud/1", None)
    assert [p["digest"] for p in chain["packages"]] == [first.manifest.digest]
    loaded, manifest = load_package(first.path, trusted=True)
    assert manifest.digest == first.manifest.digest
    assert list(loaded.predict(features[:7])) == list(model.predict(features[:7]))


def test_only_registered_versions_are_packaged(tracking: str) -> None:
    with pytest.raises(UserError, match="registered version"):
        build_package("runs:/abc/model")


def test_recorded_requirements_are_pinned_to_the_recorded_versions() -> None:
    from cairn.packaging.build import pinned

    assert pinned(["scikit-learn>=1.4", "numpy", "pandas==2.1.0", "torch @ https://x/t.whl",
                   "unknown-lib"], {"scikit-learn": "1.9.1", "numpy": "2.0.0"}) == [
        "scikit-learn==1.9.1", "numpy==2.0.0", "pandas==2.1.0", "torch @ https://x/t.whl",
        "unknown-lib"]


def test_includes_stay_inside_the_project(tmp_path: Path) -> None:
    from cairn.errors import PathError
    from cairn.packaging.build import include_files

    root = tmp_path / "project"
    (root / "prep").mkdir(parents=True)
    (root / "prep" / "a.py").write_text("a")
    (tmp_path / "secret").write_text("s")
    (root / "prep" / "leak").symlink_to(tmp_path / "secret")
    with pytest.raises(PathError, match="--include"):
        include_files([str(root / "prep")], root)
    (root / "prep" / "leak").unlink()
    assert list(include_files([str(root / "prep")], root)) == ["include/prep/a.py"]
    for outside in (str(tmp_path / "secret"), str(root / ".git" / "config")):
        with pytest.raises(PathError):
            include_files([outside], root)
