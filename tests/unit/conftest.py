"""Fixtures shared by the unit tests of several packages (tracking, registry)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cairn.tracking import fluent


@pytest.fixture
def tracking(store_uri: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh store as the tracking URI, outside any project; no run active.

    Runs on every MetadataStore `store_uri` gives (SQLite, and PostgreSQL when installed).
    """
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    fluent._reset_for_tests()
    fluent.set_tracking_uri(store_uri)
    yield store_uri
    fluent._reset_for_tests()
