"""Loading a model that ships code: the project's verified store vouches for it, a path
does not, and neither vouches for a pickle."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import cairn
import cairn.pyfunc
from cairn.flavors.pickling import UntrustedModelError
from tests.unit.flavors.code_models import CodeModel, forget_modules, imports_snapshot, write_code


class Tripler:
    """A pickled python model (importable by pickle from this test module)."""

    def predict(self, model_input: list[int]) -> list[int]:
        return [x * 3 for x in model_input]


@pytest.fixture(autouse=True)
def restore_imports(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    forget_modules("flv_store_")


def log_code_model(tmp_path: Path, module: str,
                   registered_model_name: str | None = None) -> tuple[str, CodeModel]:
    code = write_code(tmp_path / "src", module)
    with cairn.start_run():
        info = cairn.pyfunc.log_model("model", python_model=code.class_path,
                                      code_paths=code.files,
                                      registered_model_name=registered_model_name)
    return info.model_uri, code


def test_a_code_model_from_a_run_loads_without_trust(tracking: str, tmp_path: Path) -> None:
    uri, code = log_code_model(tmp_path, "flv_store_a")
    assert uri.startswith("runs:/")
    assert list(cairn.load_model(uri).predict([1, 2])) == [3, 6]
    assert code.ran()[0] == "flv_store_a"


def test_a_registered_code_model_loads_without_trust(tracking: str, tmp_path: Path) -> None:
    log_code_model(tmp_path, "flv_store_b", registered_model_name="coded")
    assert list(cairn.load_model("models:/coded/1").predict([2])) == [6]
    assert list(cairn.pyfunc.load_model("models:/coded/latest").predict([3])) == [9]


def test_the_same_model_downloaded_to_a_path_needs_trust(tracking: str,
                                                         tmp_path: Path) -> None:
    uri, code = log_code_model(tmp_path, "flv_store_c")
    run_id = uri.split("/")[1]
    copy = cairn.Client().download_artifacts(run_id, "model", tmp_path / "copy")
    before = imports_snapshot()
    with pytest.raises(UntrustedModelError, match=r"trusted=True \(CLI: --trust\)"):
        cairn.load_model(copy)
    assert imports_snapshot() == before
    assert code.ran() == []
    assert list(cairn.load_model(copy, trusted=True).predict([1])) == [3]


def test_a_pickled_model_from_the_store_still_needs_trust(tracking: str,
                                                          tmp_path: Path) -> None:
    code = write_code(tmp_path / "src", "flv_store_d")
    with cairn.start_run():
        info = cairn.pyfunc.log_model("model", python_model=Tripler(), code_paths=code.files,
                                      registered_model_name="pickled")
    for uri in (info.model_uri, "models:/pickled/1"):
        before = imports_snapshot()
        with pytest.raises(UntrustedModelError, match="is a pickle model"):
            cairn.load_model(uri)
        assert imports_snapshot()[0] == before[0]
    assert list(cairn.load_model("models:/pickled/1", trusted=True).predict([1])) == [3]
