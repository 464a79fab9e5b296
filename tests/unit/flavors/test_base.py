from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from cairn.errors import FormatError, NotFoundError, PathError, UserError
from cairn.flavors import base
from cairn.flavors import sklearn as sk_flavor
from cairn.flavors.signature import (
    ColumnSchema,
    ColumnSpec,
    Signature,
    TensorSchema,
    TensorSpec,
)


def saved(tmp_path: Path, model: Any, example: Any = None) -> Path:
    path = tmp_path / "model"
    sk_flavor.save_model(model, path, input_example=example)
    return path


def rewrite_yaml(path: Path, **changes: Any) -> None:
    data = yaml.safe_load((path / base.MODEL_FILE).read_text())
    data.update(changes)
    (path / base.MODEL_FILE).write_text(yaml.safe_dump(data))


def test_model_file_records_what_made_the_model(tmp_path: Path, frame_model: Any,
                                                iris: tuple[Any, Any]) -> None:
    path = saved(tmp_path, frame_model, iris[0][:3])
    data = yaml.safe_load((path / base.MODEL_FILE).read_text())
    assert data["format"] == "cairn-model/1"
    assert data["loader"] == "sklearn"
    assert data["flavors"]["sklearn"] == {"file": "model.skops",
                                          "serialization_format": "skops"}
    assert data["input_example"] == {"file": "input_example.json", "type": "dataframe"}
    assert set(data["library_versions"]) >= {"scikit-learn", "skops", "numpy"}
    assert data["python_version"].count(".") == 2 and data["created"].endswith("Z")
    assert any(r.startswith("scikit-learn==") for r in data["requirements"])
    assert (path / "requirements.txt").read_text().splitlines() == data["requirements"]


def test_user_metadata_and_requirements_are_kept(tmp_path: Path, frame_model: Any) -> None:
    path = tmp_path / "m"
    sk_flavor.save_model(frame_model, path, metadata={"team": "fraud"},
                         pip_requirements=["scikit-learn>=1.4"])
    meta = base.read_metadata(path)
    assert meta.metadata == {"team": "fraud"}
    assert meta.requirements == ["scikit-learn>=1.4"]


def test_lineage_is_attached_without_touching_the_file(tmp_path: Path,
                                                       frame_model: Any) -> None:
    model = base.load(saved(tmp_path, frame_model))
    model.metadata = model.metadata.with_lineage({"run_id": "abc", "git_commit": "123"})
    assert model.metadata.lineage == {"run_id": "abc", "git_commit": "123"}
    assert model.metadata.to_dict()["lineage"]["run_id"] == "abc"
    assert "lineage" not in yaml.safe_load((model.path / base.MODEL_FILE).read_text())


def test_saving_into_an_existing_directory_is_refused(tmp_path: Path, frame_model: Any) -> None:
    path = saved(tmp_path, frame_model)
    with pytest.raises(UserError, match="already exists; save a model into a new"):
        sk_flavor.save_model(frame_model, path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserError, match="already exists"):
        sk_flavor.save_model(frame_model, tmp_path / "file")


def test_an_empty_directory_may_be_the_target(tmp_path: Path, frame_model: Any) -> None:
    (tmp_path / "empty").mkdir()
    sk_flavor.save_model(frame_model, tmp_path / "empty")
    assert (tmp_path / "empty" / base.MODEL_FILE).is_file()


def test_a_crash_mid_save_leaves_nothing(tmp_path: Path, frame_model: Any,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import skops.io

    def fail(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(skops.io, "dump", fail)
    with pytest.raises(KeyboardInterrupt):
        sk_flavor.save_model(frame_model, tmp_path / "models" / "m")
    assert list((tmp_path / "models").iterdir()) == []


def test_a_failing_example_leaves_nothing(tmp_path: Path, frame_model: Any) -> None:
    import numpy as np

    with pytest.raises(UserError, match="cannot infer a signature"):
        sk_flavor.save_model(frame_model, tmp_path / "m",
                             input_example=np.array([object()], dtype=object))
    assert list(tmp_path.iterdir()) == []


def test_missing_model_and_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no model at"):
        base.load(tmp_path / "nope")
    with pytest.raises(FormatError, match="not a Cairn model directory"):
        base.load(tmp_path)


def test_malformed_yaml_names_file_and_line(tmp_path: Path, frame_model: Any) -> None:
    path = saved(tmp_path, frame_model)
    (path / base.MODEL_FILE).write_text("format: cairn-model/1\nloader: [sklearn\n")
    with pytest.raises(FormatError, match=r"cairn-model.yaml:\d+: invalid YAML"):
        base.load(path)


@pytest.mark.parametrize(("changes", "message"), [
    ({"format": "cairn-model/2"}, "newer than this Cairn understands.*upgrade Cairn"),
    ({"format": "mlflow/1"}, "not a Cairn model file"),
    ({"loader": "os"}, "unknown loader 'os'"),
    ({"flavors": {}}, "no entry for loader 'sklearn'"),
    ({"signature": {"inputs": {"columns": 3}}}, "signature.inputs is malformed"),
])
def test_bad_model_files_are_refused(tmp_path: Path, frame_model: Any,
                                     changes: dict[str, Any], message: str) -> None:
    path = saved(tmp_path, frame_model)
    rewrite_yaml(path, **changes)
    with pytest.raises(FormatError, match=message):
        base.load(path)


@pytest.mark.parametrize("file", ["../outside.skops", "/etc/passwd", "link.skops"])
def test_file_names_cannot_leave_the_model_directory(tmp_path: Path, frame_model: Any,
                                                     file: str) -> None:
    path = saved(tmp_path, frame_model)
    (path / "link.skops").symlink_to(tmp_path)
    rewrite_yaml(path, flavors={"sklearn": {"file": file, "serialization_format": "skops"}})
    with pytest.raises(PathError, match="model file"):
        base.load(path)


def test_native_loader_of_another_flavor_is_refused(tmp_path: Path, frame_model: Any) -> None:
    from cairn.flavors import onnx as onnx_flavor

    path = saved(tmp_path, frame_model)
    with pytest.raises(UserError, match="is a sklearn model, not onnx"):
        onnx_flavor.load_model(path)


def test_metadata_must_be_plain_values(tmp_path: Path, frame_model: Any) -> None:
    with pytest.raises(UserError, match="metadata must hold plain values"):
        sk_flavor.save_model(frame_model, tmp_path / "m", metadata={"when": object()})
    assert list(tmp_path.iterdir()) == []


# Written by hand from docs/formats.md: a reader of format 1 must keep loading this.
GOLDEN_MODEL_FILE = """\
format: cairn-model/1
loader: sklearn
flavors:
  sklearn: {file: model.skops, serialization_format: skops, some_future_field: 1}
created: '2026-01-01T00:00:00Z'
cairn_version: 0.1.0
python_version: 3.11.0
library_versions: {scikit-learn: 1.4.0}
requirements: [scikit-learn==1.4.0]
signature:
  inputs:
    tensors:
    - {dtype: float64, shape: [-1, 4]}
  outputs:
    tensors:
    - {dtype: int64, shape: [-1]}
input_example: {file: input_example.npy, type: ndarray}
metadata: {owner: fraud-team}
an_unknown_top_level_field: ignored by readers of format 1
"""


def test_hand_written_format_1_model_loads(tmp_path: Path, array_model: Any,
                                           iris: tuple[Any, Any]) -> None:
    import numpy as np
    import skops.io

    features = iris[0].to_numpy()
    path = tmp_path / "golden"
    path.mkdir()
    skops.io.dump(array_model, path / "model.skops")
    np.save(path / "input_example.npy", features[:2])
    (path / base.MODEL_FILE).write_text(GOLDEN_MODEL_FILE)
    loaded = base.load(path)
    assert np.array_equal(loaded.predict(features), array_model.predict(features))
    assert loaded.metadata.metadata == {"owner": "fraud-team"}
    assert loaded.input_example.shape == (2, 4)


GOLDEN_MODEL = Path(__file__).parents[2] / "golden" / "model-v1"
# What save_model records of the machine it runs on, pinned so the golden is one text.
VERSIONS = {"numpy": "2.4.6", "scikit-learn": "1.9.1", "scipy": "1.17.1", "skops": "0.16.0"}
SAVED_AT = datetime(2026, 11, 28, 1, 31, 12, tzinfo=UTC)


@pytest.fixture
def pinned_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    class Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return SAVED_AT

    monkeypatch.setattr(base, "datetime", Clock)
    monkeypatch.setattr(base, "_cairn_version", lambda: "0.1.0")
    monkeypatch.setattr(base.platform, "python_version", lambda: "3.11.7")
    monkeypatch.setattr(base, "_version", VERSIONS.get)


def golden_metadata(iris: tuple[Any, Any]) -> base.ModelMetadata:
    """What tests/golden/model-v1/cairn-model.yaml records: the iris model, saved with two
    rows as its input example."""
    columns = tuple(ColumnSpec(str(name), "float64") for name in iris[0].columns)
    return base.ModelMetadata(
        loader="sklearn",
        flavors={"sklearn": {"file": "model.skops", "serialization_format": "skops"}},
        created="2026-11-28T01:31:12Z", cairn_version="0.1.0", python_version="3.11.7",
        library_versions=VERSIONS,
        requirements=["scikit-learn==1.9.1", "scipy==1.17.1", "skops==0.16.0"],
        signature=Signature(ColumnSchema(columns), TensorSchema((TensorSpec("int64", (-1,)),))),
        input_example={"file": "input_example.json", "type": "dataframe"},
        metadata={"team": "fraud"})


def test_the_golden_model_directory_reads_as_its_metadata_and_is_written_byte_for_byte(
        tmp_path: Path, frame_model: Any, iris: tuple[Any, Any], pinned_machine: None) -> None:
    """The golden holds Cairn's files of a saved model; model.skops is skops' format."""
    import pandas as pd

    from cairn.flavors.example import read_example

    expected, example = golden_metadata(iris), iris[0][:2]
    assert base.read_metadata(GOLDEN_MODEL) == expected
    assert expected.input_example is not None and expected.signature is not None
    pd.testing.assert_frame_equal(
        read_example(GOLDEN_MODEL, expected.input_example, expected.signature.inputs), example)

    path = tmp_path / "model"
    assert sk_flavor.save_model(frame_model, path, input_example=example,
                                metadata={"team": "fraud"}) == expected
    golden_files = sorted(f.name for f in GOLDEN_MODEL.iterdir())
    assert sorted(f.name for f in path.iterdir()) == sorted([*golden_files, "model.skops"])
    for name in golden_files:
        assert (path / name).read_bytes() == (GOLDEN_MODEL / name).read_bytes(), name
