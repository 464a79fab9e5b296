"""log_model as MLflow 3 users call it (`name=`) and as MLflow 2 did (`artifact_path`)."""

from __future__ import annotations

from typing import Any

import pytest

import cairn
from cairn.errors import UserError


@pytest.fixture(scope="module")
def fitted() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, target = load_iris(return_X_y=True, as_frame=True)
    return LogisticRegression(max_iter=300).fit(features, target), features


class Constant:
    def predict(self, model_input: Any) -> Any:
        return [1] * len(model_input)


def test_sklearn_log_model_takes_mlflow_3s_name(tracking: str,
                                                fitted: tuple[Any, Any]) -> None:
    model, features = fitted
    with cairn.start_run() as run:
        info = cairn.sklearn.log_model(sk_model=model, name="clf", input_example=features[:2])
        default = cairn.sklearn.log_model(model)
    assert info.model_uri == f"runs:/{run.info.run_id}/clf"
    assert default.artifact_path == "model"
    assert list(cairn.load_model(info.model_uri).predict(features[:2])) == [0, 0]


def test_pyfunc_and_onnx_log_model_take_name(tracking: str, fitted: tuple[Any, Any]) -> None:
    from skl2onnx import to_onnx

    model, features = fitted
    proto = to_onnx(model, features.to_numpy(dtype="float32")[:1])
    with cairn.start_run():
        py = cairn.pyfunc.log_model(name="const", python_model=Constant())
        onnx = cairn.onnx.log_model(proto, name="clf-onnx")
    assert (py.artifact_path, onnx.artifact_path) == ("const", "clf-onnx")
    assert list(cairn.load_model(py.model_uri, trusted=True).predict([[1], [2]])) == [1, 1]
    assert cairn.onnx.load_model(onnx.model_uri).graph is not None


def test_name_and_a_different_artifact_path_are_refused(tracking: str,
                                                         fitted: tuple[Any, Any]) -> None:
    with cairn.start_run(), pytest.raises(UserError, match="artifact_path.*name.*one"):
        cairn.sklearn.log_model(fitted[0], "a", name="b")
