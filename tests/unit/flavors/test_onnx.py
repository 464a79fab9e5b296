from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cairn.errors import FormatError, UserError
from cairn.flavors import base
from cairn.flavors import onnx as onnx_flavor
from cairn.flavors.signature import SchemaError


@pytest.fixture(scope="module")
def proto(array_model: Any) -> Any:
    from skl2onnx import to_onnx

    sample = np.zeros((1, 4), dtype=np.float32)
    return to_onnx(array_model, sample, options={"zipmap": False}, target_opset=17)


def test_round_trip_predicts_like_sklearn(tmp_path: Path, proto: Any, array_model: Any,
                                          iris: tuple[Any, Any]) -> None:
    features = iris[0].to_numpy()
    onnx_flavor.save_model(proto, tmp_path / "m")
    loaded = base.load(tmp_path / "m")
    out = loaded.predict(features)  # float64 in; fed to the graph as float32
    assert set(out) == {"label", "probabilities"}
    assert (out["label"] == array_model.predict(features)).mean() > 0.99
    assert np.allclose(out["probabilities"], array_model.predict_proba(features), atol=1e-4)
    assert loaded.unwrap().get_inputs()[0].name == "X"
    assert onnx_flavor.load_model(tmp_path / "m") == proto


def test_signature_comes_from_the_graph(tmp_path: Path, proto: Any) -> None:
    onnx_flavor.save_model(proto, tmp_path / "m")
    signature = base.read_metadata(tmp_path / "m").signature
    assert signature is not None and signature.outputs is not None
    assert signature.inputs.to_dict() == {
        "tensors": [{"name": "X", "dtype": "float32", "shape": [-1, 4]}]}
    assert [t["name"] for t in signature.outputs.to_dict()["tensors"]] == [
        "label", "probabilities"]


def test_pandas_input_and_shape_checks(tmp_path: Path, proto: Any, array_model: Any,
                                       iris: tuple[Any, Any]) -> None:
    features = iris[0]
    onnx_flavor.save_model(proto, tmp_path / "m", input_example=features[:3])
    loaded = base.load(tmp_path / "m")
    assert loaded.signature is not None and loaded.signature.outputs is not None
    out = loaded.predict(features[:10])
    assert list(out["label"]) == list(array_model.predict(features[:10].to_numpy()))
    with pytest.raises(SchemaError, match="missing column 'petal width"):
        loaded.predict(features.drop(columns=["petal width (cm)"]))

    onnx_flavor.save_model(proto, tmp_path / "n")
    with pytest.raises(SchemaError, match=r"shape \(2, 3\), the model expects \('any', 4\)"):
        base.load(tmp_path / "n").predict(np.ones((2, 3)))


def test_not_a_model_proto_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="expected an onnx.ModelProto, got str"):
        onnx_flavor.save_model("model.onnx", tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_corrupt_onnx_file_is_a_format_error(tmp_path: Path, proto: Any) -> None:
    onnx_flavor.save_model(proto, tmp_path / "m")
    (tmp_path / "m" / "model.onnx").write_bytes(b"not onnx")
    with pytest.raises(FormatError, match="onnxruntime cannot load the model"):
        base.load(tmp_path / "m")
