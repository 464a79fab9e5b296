"""Registry tests run on every MetadataStore (`tracking`, from tests/unit/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def fitted() -> tuple[object, object]:
    """A small fitted model and its training frame (iris, shipped with scikit-learn)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, target = load_iris(return_X_y=True, as_frame=True)
    return LogisticRegression(max_iter=300).fit(features, target), features
