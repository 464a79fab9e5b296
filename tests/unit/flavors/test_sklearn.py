from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cairn.errors import UserError
from cairn.flavors import base
from cairn.flavors import sklearn as sk_flavor
from cairn.flavors.pickling import UntrustedModelError
from cairn.flavors.signature import SchemaError


def test_skops_round_trip_predicts_the_same(tmp_path: Path, frame_model: Any,
                                            iris: tuple[Any, Any]) -> None:
    features, _ = iris
    sk_flavor.save_model(frame_model, tmp_path / "m", input_example=features[:5])
    loaded = base.load(tmp_path / "m")
    assert np.array_equal(loaded.predict(features), frame_model.predict(features))
    assert type(loaded.unwrap()) is type(frame_model)
    assert loaded.input_example.equals(features[:5].reset_index(drop=True))
    assert np.array_equal(sk_flavor.load_model(tmp_path / "m").coef_, frame_model.coef_)


def test_skops_load_never_unpickles(tmp_path: Path, array_model: Any, iris: tuple[Any, Any],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    features = iris[0].to_numpy()
    sk_flavor.save_model(array_model, tmp_path / "m", input_example=features[:2])

    def no_pickle(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("pickle used while loading a skops model")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, no_pickle)
    loaded = base.load(tmp_path / "m")
    assert np.array_equal(loaded.predict(features), array_model.predict(features))
    assert loaded.input_example.shape == (2, 4)


def test_pickle_model_needs_trust(tmp_path: Path, frame_model: Any,
                                  iris: tuple[Any, Any]) -> None:
    sk_flavor.save_model(frame_model, tmp_path / "m", serialization_format="pickle")
    with pytest.raises(UntrustedModelError) as refused:
        base.load(tmp_path / "m", source="models/x")
    assert str(refused.value) == (
        "models/x is a pickle model; pickle can run arbitrary code when loaded — "
        "pass trusted=True (CLI: --trust) if you trust its source")
    loaded = base.load(tmp_path / "m", trusted=True)
    assert np.array_equal(loaded.predict(iris[0]), frame_model.predict(iris[0]))


def test_tree_storage_that_skops_flags_needs_trust(tmp_path: Path,
                                                   iris: tuple[Any, Any]) -> None:
    from sklearn.ensemble import RandomForestClassifier

    features, target = iris
    forest = RandomForestClassifier(n_estimators=3, random_state=0).fit(features, target)
    sk_flavor.save_model(forest, tmp_path / "m")
    with pytest.raises(UntrustedModelError, match=r"sklearn\.tree\._tree\.Tree .*trusted=True"):
        base.load(tmp_path / "m")
    loaded = base.load(tmp_path / "m", trusted=True)
    assert np.array_equal(loaded.predict(features), forest.predict(features))


def test_types_outside_sklearn_numpy_scipy_are_named(tmp_path: Path, iris: tuple[Any, Any],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    code = tmp_path / "code"
    code.mkdir()
    (code / "flv_features.py").write_text("def double(x):\n    return x * 2\n")
    monkeypatch.syspath_prepend(str(code))
    from flv_features import double  # type: ignore[import-not-found]

    features, target = iris[0].to_numpy(), iris[1].to_numpy()
    pipe = make_pipeline(FunctionTransformer(double), FunctionTransformer(np.log1p),
                         LogisticRegression(max_iter=500)).fit(features, target)
    sk_flavor.save_model(pipe, tmp_path / "m")
    with pytest.raises(UntrustedModelError, match=r"types Cairn does not trust by default: "
                                                  r"flv_features\.double — pass trusted=True"):
        base.load(tmp_path / "m")
    loaded = base.load(tmp_path / "m", trusted=True)
    assert np.array_equal(loaded.predict(features), pipe.predict(features))


def test_allow_list() -> None:
    assert sk_flavor.is_allowed_type("sklearn.linear_model._logistic.LogisticRegression")
    assert sk_flavor.is_allowed_type("numpy.log1p")
    assert not sk_flavor.is_allowed_type("numpy.load")  # a function, not a type or ufunc
    assert not sk_flavor.is_allowed_type("builtins.eval")
    assert not sk_flavor.is_allowed_type("sklearn.tree._tree.Tree")


def test_schema_is_enforced_on_predict(tmp_path: Path, frame_model: Any,
                                       iris: tuple[Any, Any]) -> None:
    features, _ = iris
    sk_flavor.save_model(frame_model, tmp_path / "m", input_example=features[:5])
    loaded = base.load(tmp_path / "m")
    with pytest.raises(SchemaError, match="missing column 'petal width \\(cm\\)'"):
        loaded.predict(features.drop(columns=["petal width (cm)"]))
    with pytest.raises(SchemaError, match="column 'sepal length \\(cm\\)' has dtype string"):
        loaded.predict(features.astype({"sepal length (cm)": str}))
    assert list(loaded.predict(features.assign(extra=1)[:3])) == [0, 0, 0]
    assert list(loaded.predict(features[:3].to_numpy())) == [0, 0, 0]


def test_numpy_shape_is_enforced(tmp_path: Path, array_model: Any,
                                 iris: tuple[Any, Any]) -> None:
    features = iris[0].to_numpy()
    sk_flavor.save_model(array_model, tmp_path / "m", input_example=features[:5])
    loaded = base.load(tmp_path / "m")
    assert loaded.signature is not None and loaded.signature.outputs is not None
    with pytest.raises(SchemaError, match=r"has shape \(3, 3\), the model expects \('any', 4\)"):
        loaded.predict(features[:3, :3])


def test_unknown_serialization_format_is_refused(tmp_path: Path, frame_model: Any) -> None:
    with pytest.raises(UserError, match="unknown serialization_format 'joblib'"):
        sk_flavor.save_model(frame_model, tmp_path / "m", serialization_format="joblib")
    assert not (tmp_path / "m").exists()
