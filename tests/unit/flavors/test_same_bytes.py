"""The same model saved twice is the same bytes: what lets `cairn reproduce` match a
digest, and the store keep one copy. skops named objects by their memory address and
stamped its zip entries with the clock; cairn-model.yaml said when it was saved."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cairn.flavors import sklearn as sk_flavor
from cairn.objects.hashing import hash_bytes


def digests(path: Path) -> dict[str, str]:
    return {p.name: hash_bytes(p.read_bytes()) for p in sorted(path.iterdir())}


def test_a_model_saved_twice_is_the_same_files(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, target = load_iris(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(features,
                                                                                  target)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    sk_flavor.save_model(model, tmp_path / "a", input_example=features[:3])
    time.sleep(1.1)  # a clock that would show in zip entries or the metadata
    sk_flavor.save_model(model, tmp_path / "b", input_example=features[:3])
    assert digests(tmp_path / "a") == digests(tmp_path / "b")
    assert "created: '2023-11-14T22:13:20Z'" in (tmp_path / "a" / "cairn-model.yaml").read_text()
    loaded = sk_flavor.load_model(tmp_path / "b")
    assert (loaded.predict(features) == model.predict(features)).all()
