"""load_model: every URI form, schema-checked predict, lineage, and nothing tampered."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import cairn
from cairn.errors import IntegrityError, NotFoundError, UserError
from cairn.flavors.signature import SchemaError
from cairn.registry.loading import MODELS_DIR
from cairn.tracking.backend import backend
from tests.processes import obeying_permissions


def register(fitted: tuple[Any, Any], name: str = "fraud", **log: Any) -> tuple[str, Any]:
    model, features = fitted
    with cairn.start_run() as run:
        cairn.log_param("lr", 0.01)
        cairn.log_metric("f1", 0.91)
        info = cairn.sklearn.log_model(model, "model", input_example=features[:5],
                                       registered_model_name=name, **log)
    assert info.registered_model_version is not None
    return run.info.run_id, info


def test_every_uri_form_loads_the_same_model(tracking: str, fitted: tuple[Any, Any]) -> None:
    model, features = fitted
    run_id, _info = register(fitted)
    client = cairn.Client()
    client.transition_model_version_stage("fraud", 1, "Production")
    client.set_registered_model_alias("fraud", "champion", 1)
    expected = list(model.predict(features[:10]))
    for uri in ("models:/fraud/Production", "models:/fraud/production", "models:/fraud/1",
                "models:/fraud/latest", "models:/fraud@champion", f"runs:/{run_id}/model"):
        loaded = cairn.load_model(uri)
        assert list(loaded.predict(features[:10])) == expected, uri
    assert cairn.sklearn.load_model("models:/fraud/1").predict(features[:1]) is not None


def test_metadata_carries_the_lineage(tracking: str, fitted: tuple[Any, Any]) -> None:
    run_id, info = register(fitted)
    cairn.Client().transition_model_version_stage("fraud", 1, "Staging")
    lineage = cairn.load_model("models:/fraud/Staging").metadata.lineage
    assert lineage["run_id"] == run_id and lineage["digest"] == info.digest
    assert (lineage["name"], lineage["version"], lineage["stage"]) == ("fraud", 1, "Staging")
    assert lineage["params"] == {"lr": "0.01"} and lineage["metrics"] == {"f1": 0.91}


def test_predict_enforces_the_input_schema(tracking: str, fitted: tuple[Any, Any]) -> None:
    _, features = fitted
    register(fitted)
    loaded = cairn.load_model("models:/fraud/1")
    with pytest.raises(SchemaError):
        loaded.predict(features.drop(columns=[features.columns[0]]))


def test_unknown_versions_stages_and_aliases(tracking: str, fitted: tuple[Any, Any]) -> None:
    register(fitted)
    with pytest.raises(NotFoundError, match="no version of model 'fraud' is in stage "
                                            "Production; stages held: None"):
        cairn.load_model("models:/fraud/Production")
    with pytest.raises(NotFoundError, match="has no version 9"):
        cairn.load_model("models:/fraud/9")
    with pytest.raises(NotFoundError, match="has no alias 'best'"):
        cairn.load_model("models:/fraud@best")
    with pytest.raises(NotFoundError, match="no registered model 'frau'"):
        cairn.load_model("models:/frau/1")
    with pytest.raises(UserError, match="malformed model URI"):
        cairn.load_model("models:/fraud/Prod")


def object_of(digest: str, name: str) -> Path:
    """The cache object of file `name` inside model directory manifest `digest`."""
    from cairn.objects.tree import read_tree

    odb = backend().odb
    (entry,) = [e for e in read_tree(odb, digest) if e.name == name]
    return Path(odb.oid_to_path(entry.digest))


def flip_a_byte(path: Path) -> None:
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_a_tampered_model_object_is_refused(tracking: str, fitted: tuple[Any, Any]) -> None:
    _, info = register(fitted)
    flip_a_byte(object_of(info.digest, "model.skops"))
    with pytest.raises(IntegrityError, match="corrupt.*refusing to use it"):
        cairn.load_model("models:/fraud/1")
    assert not (backend().tmp_dir / MODELS_DIR / info.digest).exists()


def owner_can_write(path: Path) -> bool:
    """Whether `path`'s owner may open it for writing, tried by a child process that obeys
    file permissions even when the tests run as root."""
    probe = ("import os, sys\n"
             "try:\n    os.close(os.open(sys.argv[1], os.O_WRONLY))\n"
             "except PermissionError:\n    print('refused')\n"
             "else:\n    print('written')\n")
    child = subprocess.run([*obeying_permissions(), sys.executable, "-c", probe, str(path)],
                           capture_output=True, text=True, check=True)
    assert child.stdout in ("refused\n", "written\n"), child.stderr
    return child.stdout == "written\n"


def test_a_tampered_materialized_copy_is_rebuilt(tracking: str,
                                                 fitted: tuple[Any, Any]) -> None:
    model, features = fitted
    _, info = register(fitted)
    cairn.load_model("models:/fraud/1")
    copy = backend().tmp_dir / MODELS_DIR / info.digest / "cairn-model.yaml"
    assert not owner_can_write(copy)
    copy.chmod(0o644)
    copy.write_text(copy.read_text() + "\n# edited\n")
    loaded = cairn.load_model("models:/fraud/1")  # rebuilt from the verified objects
    assert "edited" not in copy.read_text()
    assert list(loaded.predict(features[:3])) == list(model.predict(features[:3]))


def test_pickle_models_need_trust(tracking: str, fitted: tuple[Any, Any]) -> None:
    register(fitted, name="pickled", serialization_format="pickle")
    with pytest.raises(UserError, match="pickle.*trusted=True"):
        cairn.load_model("models:/pickled/1")
    assert cairn.load_model("models:/pickled/1", trusted=True).predict is not None


def test_a_local_model_directory_registers_and_loads(tracking: str, tmp_path: Path,
                                                     fitted: tuple[Any, Any]) -> None:
    model, features = fitted
    cairn.sklearn.save_model(model, tmp_path / "exported", input_example=features[:2])
    mv = cairn.register_model(tmp_path / "exported", "from-dir")
    loaded = cairn.load_model("models:/from-dir/1")
    assert list(loaded.predict(features[:3])) == list(model.predict(features[:3]))
    assert loaded.metadata.lineage["run_id"] is None and mv.run_id is None
