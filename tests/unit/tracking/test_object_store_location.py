"""Where a run's objects are found: chosen by the tracking URI, not the working directory."""

from __future__ import annotations

from pathlib import Path

import pytest

import cairn
from cairn.errors import ObjectNotFound
from cairn.tracking import fluent
from tests.conftest import make_repo


class Doubler:
    def predict(self, model_input: list[int]) -> list[int]:
        return [2 * x for x in model_input]


@pytest.fixture
def logged_in_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A model logged from inside a project; returns (project root, its runs:/ URI)."""
    project = make_repo(tmp_path / "project").root
    monkeypatch.chdir(project)
    fluent._reset_for_tests()
    with cairn.start_run():
        info = cairn.pyfunc.log_model(name="doubler", python_model=Doubler())
    fluent._reset_for_tests()
    return project, info.model_uri


@pytest.mark.parametrize("where", ["outside any project", "in another project"])
def test_a_model_logged_in_a_project_loads_from_outside_it(
        logged_in_project: tuple[Path, str], where: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    project, uri = logged_in_project
    elsewhere = tmp_path / "elsewhere"
    if where == "in another project":
        make_repo(elsewhere)
    else:
        elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cairn.set_tracking_uri(f"sqlite:///{project / '.cairn' / 'cairn.db'}")
    try:
        model = cairn.load_model(uri, trusted=True)
        assert list(model.predict([1, 2])) == [2, 4]
    finally:
        fluent._reset_for_tests()


def test_a_missing_object_names_the_cache_searched_and_what_to_do(
        logged_in_project: tuple[Path, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    project, uri = logged_in_project
    shutil.rmtree(project / ".cairn" / "cache")
    monkeypatch.chdir(tmp_path)
    cairn.set_tracking_uri(f"sqlite:///{project / '.cairn' / 'cairn.db'}")
    try:
        with pytest.raises(ObjectNotFound) as caught:
            cairn.load_model(uri, trusted=True)
    finally:
        fluent._reset_for_tests()
    message = str(caught.value)
    assert str(project / ".cairn" / "cache") in message
    assert "cairn pull" in message and "tracking URI" in message


def test_a_database_no_project_owns_stores_in_the_current_project(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Shared like a server: the objects travel with the project's data (push, gc)."""
    project = make_repo(tmp_path / "project").root
    monkeypatch.chdir(project)
    db = tmp_path / "shared" / "cairn.db"
    cairn.set_tracking_uri(str(db))
    try:
        with cairn.start_run():
            info = cairn.pyfunc.log_model(name="doubler", python_model=Doubler())
        assert not (db.parent / "cache").exists()
        assert any((project / ".cairn" / "cache" / "objects").iterdir())
        assert list(cairn.load_model(info.model_uri, trusted=True).predict([3])) == [6]
    finally:
        fluent._reset_for_tests()


def test_a_database_used_outside_any_project_keeps_its_objects_beside_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "shared" / "cairn.db"
    cairn.set_tracking_uri(str(db))
    try:
        with cairn.start_run():
            info = cairn.pyfunc.log_model(name="doubler", python_model=Doubler())
        assert (db.parent / "cache").is_dir()
        assert list(cairn.load_model(info.model_uri, trusted=True).predict([3])) == [6]
    finally:
        fluent._reset_for_tests()
