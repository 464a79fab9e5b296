"""Tracking tests run on every MetadataStore (SQLite, and PostgreSQL when installed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.tracking import fluent


@pytest.fixture
def tracking(store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh store as the tracking URI, outside any project; no run active."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    fluent._reset_for_tests()
    fluent.set_tracking_uri(store_uri)
    yield store_uri
    fluent._reset_for_tests()


@pytest.fixture(scope="session")
def fitted() -> tuple[object, object]:
    """A small fitted model and its training frame (iris, shipped with scikit-learn)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, target = load_iris(return_X_y=True, as_frame=True)
    return LogisticRegression(max_iter=300).fit(features, target), features
